export {
  ACCESS_TOKEN_ALGORITHMS,
  ACCESS_TOKEN_AUDIENCE,
  ACCESS_TOKEN_ISSUER,
  API_TOKEN_PATTERN,
  createAuth,
  type Auth,
  type AuthOptions,
} from './authenticator.ts';
export { decide, permissionCovers, permissionsOfRoles, type Decision, type ResourceContext } from './policy.ts';
export { remoteAuthSources, type RemoteAuthOptions } from './remote.ts';
export type { ActiveSession, ApiTokenIdentity, AuthorizationData, AuthSources, AuthUser, Policy, PolicyCondition, PolicyEffect } from './types.ts';
export { changeOf, type Change } from './change.ts';
export { permissionOf, protectApiRoutes } from './guard.ts';
