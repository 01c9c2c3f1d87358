import { describe, expect, it } from 'vitest';
import { decide, type AuthorizationData, type AuthUser } from '../src/auth/index.ts';

const data: AuthorizationData = {
  roles: { staff: ['orders:read', 'labels:read'] },
  policies: [
    { name: 'staff-write-orders', effect: 'allow', permission: 'orders:write', role: 'staff', condition: 'always' },
    { name: 'staff-own-department', effect: 'deny', permission: 'orders:read', role: 'staff', condition: 'other-department' },
  ],
};
const staff: AuthUser = { id: 'u1', roles: ['staff'], permissions: ['orders:read', 'labels:read'], departmentCode: 'LAB', via: { kind: 'jwt', sessionId: 's1' } };
const scopedToken: AuthUser = { ...staff, permissions: ['labels:read'], via: { kind: 'api-token', tokenId: 't1' } };

describe('permission and policy decisions', () => {
  it('grants by role, by allow policy, and lets a deny policy win', () => {
    expect(decide(data, staff, 'orders:read', { departmentCode: 'LAB' })).toEqual({ allowed: true });
    expect(decide(data, staff, 'orders:write')).toEqual({ allowed: true });
    expect(decide(data, staff, 'orders:read', { departmentCode: 'PHARM' })).toEqual({ allowed: false, reason: 'policy "staff-own-department" denies orders:read' });
    expect(decide(data, staff, 'users:read').allowed).toBe(false);
  });

  it("keeps an API token within its scopes: its owner's allow policies do not widen it", () => {
    expect(decide(data, scopedToken, 'labels:read')).toEqual({ allowed: true });
    expect(decide(data, scopedToken, 'orders:write')).toEqual({ allowed: false, reason: "orders:write is not among the API token's scopes" });
  });
});
