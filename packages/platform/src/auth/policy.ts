import type { AuthorizationData, AuthUser, Policy } from './types.ts';

/** The resource a permission is checked against, as far as policies need it. */
export interface ResourceContext {
  readonly departmentCode?: string | null;
}

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

/** Whether `granted` (e.g. `orders:*`) covers `wanted` (e.g. `orders:read`). */
export function permissionCovers(granted: string, wanted: string): boolean {
  if (granted === wanted) return true;
  const [resource, action] = granted.split(':');
  return action === '*' && wanted.startsWith(`${resource}:`);
}

/** Every permission the roles grant, per the role → permission map. */
export function permissionsOfRoles(data: AuthorizationData, roles: readonly string[]): string[] {
  return [...new Set(roles.flatMap((role) => data.roles[role] ?? []))].sort();
}

function conditionHolds(policy: Policy, user: AuthUser, resource: ResourceContext | undefined): boolean {
  if (policy.condition === 'always') return true;
  // Department conditions need a resource with a known department; without one they do not apply.
  if (resource?.departmentCode === undefined) return false;
  const same = user.departmentCode !== null && resource.departmentCode === user.departmentCode;
  return policy.condition === 'same-department' ? same : !same;
}

/**
 * Decides whether `user` may use `permission` (on `resource`): a matching deny policy always
 * wins; otherwise a permission of the user's or a matching allow policy grants it.
 *
 * @example
 * decide(data, user, 'orders:read', { departmentCode: order.department_code });
 */
export function decide(data: AuthorizationData, user: AuthUser, permission: string, resource?: ResourceContext): Decision {
  const applicable = data.policies.filter(
    (p) => permissionCovers(p.permission, permission) && (p.role === null || user.roles.includes(p.role)) && conditionHolds(p, user, resource),
  );
  const deny = applicable.find((p) => p.effect === 'deny');
  if (deny) return { allowed: false, reason: `policy "${deny.name}" denies ${permission}` };
  const granted = user.permissions.some((held) => permissionCovers(held, permission));
  if (granted) return { allowed: true };
  // An API token is limited to its scopes (its `permissions`): no allow policy reaches beyond them.
  if (user.via.kind === 'api-token') return { allowed: false, reason: `${permission} is not among the API token's scopes` };
  if (applicable.some((p) => p.effect === 'allow')) return { allowed: true };
  return { allowed: false, reason: `${permission} is not granted` };
}
