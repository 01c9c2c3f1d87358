import { describe, expect, it } from 'vitest';
import { asUser } from '@archipelago/platform/testing/identity';
import { coreTestApp } from './core-app.ts';

// Seed 000's "staff may read orders of their own department only", as an IAM policy.
const ownDepartmentOnly = { name: 'staff-own-department', effect: 'deny', permission: 'orders:read', role: 'staff', condition: 'other-department' } as const;

describe('core access control', async () => {
  const { server, identity } = await coreTestApp({ policies: [ownDepartmentOnly] });
  const as = async (roles: string[], departmentCode: string | null = null) => asUser(server, await identity.token(identity.user({ roles, departmentCode })));
  const codes = (body: { items: { order_code: string }[] }) => body.items.map((order) => order.order_code).sort();

  it('answers 401 without a token and 403 without the permission', async () => {
    expect((await server.inject({ url: '/api/v1/orders' })).json()).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    const viewer = await as(['viewer']);
    expect((await viewer.inject({ url: '/api/v1/orders' })).statusCode).toBe(200);
    const write = await viewer.inject({ method: 'POST', url: '/api/v1/orders', payload: { item_name: 'Gauze', department_code: 'LAB' } });
    expect(write.json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
  });

  it("lets staff see only their own department's orders, in lists and one by one", async () => {
    const admin = await as(['admin']);
    expect(codes((await admin.inject({ url: '/api/v1/orders' })).json())).toEqual(['ORD-2025-000001', 'ORD-2025-000002']);

    const labStaff = await as(['staff'], 'LAB');
    const listed = (await labStaff.inject({ url: '/api/v1/orders' })).json<{ items: { order_code: string; department_code: string }[]; total: number }>();
    expect(codes(listed)).toEqual(['ORD-2025-000001']);
    expect(listed.total).toBe(1);
    expect((await labStaff.inject({ url: '/api/v1/orders/ORD-2025-000001' })).statusCode).toBe(200);
    const other = (await labStaff.inject({ url: '/api/v1/orders/ORD-2025-000002' })).json<{ status: number; detail: string }>();
    expect(other.status).toBe(403);
    expect(other.detail).toContain('staff-own-department');
    expect((await labStaff.inject({ url: '/api/v1/orders?department_code=PHARM' })).json()).toMatchObject({ status: 403 });

    const homeless = await as(['staff'], null);
    expect((await homeless.inject({ url: '/api/v1/orders' })).json()).toMatchObject({ items: [], total: 0 });
  });
});
