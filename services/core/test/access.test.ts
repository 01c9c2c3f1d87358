import { describe, expect, it } from 'vitest';
import { asUser } from '@archipelago/platform/testing/identity';
import { coreTestApp } from './core-app.ts';

// The house rule "staff may read orders of their own department only", as an IAM policy.
const ownDepartmentOnly = { name: 'staff-own-department', effect: 'deny', permission: 'orders:read', role: 'staff', condition: 'other-department' } as const;
const PHARM_ORDER = '00000000-0000-4000-8005-000000000002';
const ENDO_ENGAGEMENT = '00000000-0000-4000-8002-000000000001';

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
    // Another department's order answers exactly like one that does not exist: no existence oracle.
    const missing = (await labStaff.inject({ url: '/api/v1/orders/ORD-2025-999999' })).json<{ status: number; detail: string }>();
    const other = (await labStaff.inject({ url: '/api/v1/orders/ORD-2025-000002' })).json<{ status: number; detail: string }>();
    expect(other).toEqual({ ...missing, detail: missing.detail.replace('ORD-2025-999999', 'ORD-2025-000002'), instance: '/api/v1/orders/ORD-2025-000002' });
    expect(other.status).toBe(404);
    expect((await labStaff.inject({ url: `/api/v1/orders/${PHARM_ORDER}` })).statusCode).toBe(404);
    expect((await labStaff.inject({ url: '/api/v1/orders?department_code=PHARM' })).json()).toMatchObject({ items: [], total: 0 });
    expect((await labStaff.inject({ url: '/api/v1/orders?order_code=ORD-2025-000002' })).json()).toMatchObject({ items: [], total: 0 });
    const status = await labStaff.inject({ method: 'POST', url: `/api/v1/orders/${PHARM_ORDER}/status`, payload: { status: 'CANCELLED' } });
    expect(status.json()).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect((await admin.inject({ url: `/api/v1/orders/${PHARM_ORDER}` })).json()).toMatchObject({ status: 'PENDING', version: 1 });

    const homeless = await as(['staff'], null);
    expect((await homeless.inject({ url: '/api/v1/orders' })).json()).toMatchObject({ items: [], total: 0 });
  });
});

describe('department policies on writes and on every entity with a department', async () => {
  const everything = ['orders', 'resources', 'engagements', 'intakes', 'records'].flatMap((r) => [`${r}:read`, `${r}:write`]);
  const policies = [
    { name: 'staff write own department orders', effect: 'deny', permission: 'orders:write', role: 'staff', condition: 'other-department' },
    { name: 'staff own department engagements', effect: 'deny', permission: 'engagements:*', role: 'staff', condition: 'other-department' },
    { name: 'staff own department intakes', effect: 'deny', permission: 'intakes:*', role: 'staff', condition: 'other-department' },
  ] as const;
  const { server, identity, db } = await coreTestApp({ roles: { admin: everything, staff: everything }, policies });
  const as = async (roles: string[], departmentCode: string | null = null) => asUser(server, await identity.token(identity.user({ roles, departmentCode })));
  const admin = await as(['admin']);
  const labStaff = await as(['staff'], 'LAB');
  const endoStaff = await as(['staff'], 'ENDO');
  const count = async (table: 'orders' | 'engagements') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const resourceId = async () => (await db.selectFrom('resources').select('id').where('reference_number', '=', 'REF001').executeTakeFirstOrThrow()).id;

  it("refuses staff an order in another department, and lets them order in their own", async () => {
    const before = await count('orders');
    const refused = await labStaff.inject({ method: 'POST', url: '/api/v1/orders', payload: { item_name: 'Gauze', department_code: 'PHARM' } });
    expect(refused.json()).toMatchObject({ status: 403, code: 'FORBIDDEN', detail: expect.stringContaining('staff write own department orders') as unknown });
    expect(await count('orders')).toBe(before);
    expect((await labStaff.inject({ method: 'POST', url: '/api/v1/orders', payload: { item_name: 'Gauze', department_code: 'LAB' } })).statusCode).toBe(201);
    // Read is allowed here, so another department's order is seen, but its status is not changed.
    const change = await labStaff.inject({ method: 'POST', url: `/api/v1/orders/${PHARM_ORDER}/status`, payload: { status: 'CANCELLED' } });
    expect(change.json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((await admin.inject({ url: `/api/v1/orders/${PHARM_ORDER}` })).json()).toMatchObject({ status: 'PENDING' });
  });

  it("hides another department's engagements on every route and refuses creating or moving one there", async () => {
    const missing = (await labStaff.inject({ url: '/api/v1/engagements/00000000-0000-4000-8002-0000000000ff' })).json<{ detail: string }>();
    const read = await labStaff.inject({ url: `/api/v1/engagements/${ENDO_ENGAGEMENT}` });
    expect(read.json()).toEqual({ ...missing, detail: missing.detail.replace('0000000000ff', '000000000001'), instance: `/api/v1/engagements/${ENDO_ENGAGEMENT}` });
    expect(read.statusCode).toBe(404);
    expect((await endoStaff.inject({ url: `/api/v1/engagements/${ENDO_ENGAGEMENT}` })).statusCode).toBe(200);
    expect((await labStaff.inject({ url: '/api/v1/engagements' })).json()).toMatchObject({ items: [], total: 0 });
    expect((await labStaff.inject({ url: '/api/v1/engagements?department_code=ENDO' })).json()).toMatchObject({ items: [], total: 0 });
    expect((await endoStaff.inject({ url: '/api/v1/engagements' })).json()).toMatchObject({ total: 1 });
    expect((await labStaff.inject({ method: 'PATCH', url: `/api/v1/engagements/${ENDO_ENGAGEMENT}`, payload: { notes: 'x' } })).statusCode).toBe(404);
    expect((await labStaff.inject({ method: 'DELETE', url: `/api/v1/engagements/${ENDO_ENGAGEMENT}` })).statusCode).toBe(404);
    expect((await labStaff.inject({ url: '/api/v1/intakes' })).json()).toMatchObject({ items: [], total: 0 });
    expect((await labStaff.inject({ url: '/api/v1/intakes/00000000-0000-4000-8003-000000000001' })).statusCode).toBe(404);

    const before = await count('engagements');
    const resource_id = await resourceId();
    const createIn = (client: typeof labStaff, department_code: string) =>
      client.inject({ method: 'POST', url: '/api/v1/engagements', payload: { resource_id, department_code, engagement_type: 'OUTPATIENT' } });
    expect((await createIn(labStaff, 'ENDO')).json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(await count('engagements')).toBe(before);
    const own = await createIn(labStaff, 'LAB');
    expect(own.statusCode, own.body).toBe(201);
    const ownId = own.json<{ id: string }>().id;
    const moved = await labStaff.inject({ method: 'PATCH', url: `/api/v1/engagements/${ownId}`, payload: { department_code: 'ENDO' } });
    expect(moved.json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((await labStaff.inject({ url: `/api/v1/engagements/${ownId}` })).json()).toMatchObject({ department_code: 'LAB', version: 1 });
    expect((await admin.inject({ method: 'PATCH', url: `/api/v1/engagements/${ownId}`, payload: { department_code: 'ENDO' } })).statusCode).toBe(200);
    expect((await admin.inject({ url: `/api/v1/engagements/${ENDO_ENGAGEMENT}` })).statusCode).toBe(200);
  });
});
