import type { JWTVerifyGetKey } from 'jose';

/** Who made a request, as every service sees it once the token is verified. */
export interface AuthUser {
  readonly id: string;
  readonly roles: readonly string[];
  /** Resolved from the roles (JWT) or the token's scopes (API token); `resource:*` grants every action. */
  readonly permissions: readonly string[];
  readonly departmentCode: string | null;
  /** How the request authenticated: a user's access token (with its session) or an API token. */
  readonly via: { readonly kind: 'jwt'; readonly sessionId: string } | { readonly kind: 'api-token'; readonly tokenId: string };
}

export type PolicyEffect = 'allow' | 'deny';
/** When a policy applies, relative to the resource being accessed. */
export type PolicyCondition = 'always' | 'same-department' | 'other-department';

/** An allow/deny rule on top of roles, e.g. deny `staff` `orders:read` on `other-department`. */
export interface Policy {
  readonly name: string;
  readonly effect: PolicyEffect;
  /** `resource:action`, or `resource:*` */
  readonly permission: string;
  /** The role it applies to; null: every user. */
  readonly role: string | null;
  readonly condition: PolicyCondition;
}

/** IAM's role → permission map and policies, fetched and cached by every service. */
export interface AuthorizationData {
  readonly roles: Readonly<Record<string, readonly string[]>>;
  readonly policies: readonly Policy[];
}

/** What IAM says about an API token it knows and that is still valid. */
export interface ApiTokenIdentity {
  readonly tokenId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  /** The token's scopes that its owner still holds. */
  readonly scopes: readonly string[];
  readonly departmentCode: string | null;
}

/** A session that is still on, and what its user holds now (a demotion or a move shows here at once). */
export interface ActiveSession {
  readonly userId: string;
  readonly roles: readonly string[];
  readonly departmentCode: string | null;
}

/**
 * Where the auth helper gets what only IAM knows. Services use `remoteAuthSources(iamUrl, { credentials })`;
 * IAM itself passes sources that read its own database.
 */
export interface AuthSources {
  /** Public keys by `kid` (a JWKS); must look again when it meets an unknown `kid`. */
  readonly keys: JWTVerifyGetKey;
  readonly authorization: () => Promise<AuthorizationData>;
  /** Resolves an API token (counting its use); null when unknown, expired or revoked. */
  readonly apiToken: (token: string) => Promise<ApiTokenIdentity | null>;
  /**
   * The session an access token belongs to, if it is still on (not signed out, not revoked), with
   * its user's roles and department as they are now; null when it has ended.
   */
  readonly sessionActive: (sessionId: string) => Promise<ActiveSession | null>;
  /** Resolves once tokens can be verified (the keys are loaded); throws while they cannot. */
  readonly keysReady?: () => Promise<void>;
}
