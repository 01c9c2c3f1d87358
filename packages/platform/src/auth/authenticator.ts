import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors, jwtVerify } from 'jose';
import { AppError } from '../errors.ts';
import { decide, permissionsOfRoles, type ResourceContext } from './policy.ts';
import type { ActiveSession, ApiTokenIdentity, AuthorizationData, AuthSources, AuthUser } from './types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth helper's hooks once the request's token is verified. */
    user?: AuthUser;
  }
}

/** Issuer and audience of IAM's access tokens. */
export const ACCESS_TOKEN_ISSUER = 'archipelago-iam';
export const ACCESS_TOKEN_AUDIENCE = 'archipelago';
/** Algorithms an access token may be signed with; anything else (`none`, HS256 …) is refused. */
export const ACCESS_TOKEN_ALGORITHMS = ['EdDSA', 'ES256'];
const CLOCK_TOLERANCE_S = 5;
/** Share of a cached answer's TTL after which a request that uses it has it fetched again, in the background. */
const REFRESH_AFTER = 0.75;

/** An API token: `ak` + 12 hex characters (the visible prefix), `_`, and a 43-character secret. */
export const API_TOKEN_PATTERN = /^(ak[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface AuthOptions {
  readonly sources: AuthSources;
  /** How long the role → permission map and policies are reused (default 30 s). */
  readonly authorizationTtlMs?: number;
  /** How long an API token's verdict is reused (default 10 s): revocation takes effect within it. */
  readonly apiTokenTtlMs?: number;
  /**
   * How long a session's state is reused (default 30 s): a signed-out session's access tokens stop
   * within it, and a user's new roles or department apply within it.
   */
  readonly sessionTtlMs?: number;
  /** Expected `iss` and `aud` (default: IAM's). */
  readonly issuer?: string;
  readonly audience?: string;
}

/** The claims IAM puts in an access token (kept small: roles, not permissions). */
interface AccessClaims {
  sub?: string;
  exp?: number;
  sid?: unknown;
  roles?: unknown;
  dept?: unknown;
}

type PreHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** IAM's answer about a session: used until `until` (TTL from when it was asked), asked again from `refreshAt`. */
interface SessionAnswer {
  readonly active: Promise<ActiveSession | null>;
  readonly until: number;
  readonly refreshAt: number;
  refreshing: boolean;
}

/** Verifies bearer tokens and checks permissions and policies; one instance per service. */
export interface Auth {
  /** The request's user, or undefined without an Authorization header; a bad token is a 401. */
  authenticate(request: FastifyRequest): Promise<AuthUser | undefined>;
  /**
   * Verifies a bearer token outside an HTTP route (a WebSocket handshake): the same checks as a
   * request's (signature, expiry, session still on, or the API token known to IAM); 401 AppError otherwise.
   */
  verifyToken(token: string): Promise<AuthUser>;
  /** preHandler: a valid token is required (401 otherwise). */
  readonly requireUser: PreHandler;
  /** preHandler: a valid token (401) carrying `permission` with no policy denying it (403). */
  requirePermission(permission: string): PreHandler;
  /** Checks `permission` on one resource (department policies); throws 403 when denied. */
  authorize(request: FastifyRequest, permission: string, resource?: ResourceContext): Promise<void>;
  /** The user set by `requireUser`/`requirePermission`; throws 401 when there is none. */
  userOf(request: FastifyRequest): AuthUser;
  /** Drops the cached role → permission map (call it on `role.permissions-changed`). */
  invalidateAuthorization(): void;
}

/**
 * Creates the auth helper of a service: JWTs are verified against IAM's JWKS, API tokens by
 * asking IAM, permissions come from IAM's cached role → permission map.
 *
 * @example
 * const auth = createAuth({ sources: remoteAuthSources(env.IAM_URL, { credentials: deps.credentials }) });
 * app.get('/api/v1/orders', { preHandler: auth.requirePermission('orders:read') }, async (request) => {
 *   const order = await orders.find(request.params.id);
 *   await auth.authorize(request, 'orders:read', { departmentCode: order.department_code });
 * });
 */
export function createAuth(options: AuthOptions): Auth {
  const { sources } = options;
  const authorizationTtl = options.authorizationTtlMs ?? 30_000;
  const apiTokenTtl = options.apiTokenTtlMs ?? 10_000;
  let cached: { data: AuthorizationData; until: number } | undefined;
  let loading: Promise<AuthorizationData> | undefined;
  const apiTokens = new Map<string, { identity: ApiTokenIdentity | null; until: number }>();
  const sessionTtl = options.sessionTtlMs ?? 30_000;
  const sessions = new Map<string, SessionAnswer>();
  const askAboutSession = (sessionId: string): SessionAnswer => {
    const asked = Date.now();
    return { active: sources.sessionActive(sessionId), until: asked + sessionTtl, refreshAt: asked + sessionTtl * REFRESH_AFTER, refreshing: false };
  };

  // Access tokens outlive a sign-out (and carry roles a demotion took away) unless their session is asked about.
  const sessionActive = async (sessionId: string): Promise<ActiveSession | null> => {
    const hit = sessions.get(sessionId);
    if (hit && hit.until > Date.now()) {
      // A session in use is asked about again before its answer runs out, in the background: no
      // request waits for IAM every TTL. A failed question is not repeated; the answer then runs out.
      if (!hit.refreshing && hit.refreshAt <= Date.now()) {
        hit.refreshing = true;
        const next = askAboutSession(sessionId);
        next.active.then(
          () => {
            if (sessions.get(sessionId) === hit) sessions.set(sessionId, next);
          },
          () => undefined, // IAM unreachable: the answer runs out at its TTL, then a request waits for IAM (503 while it is away)
        );
      }
      return hit.active;
    }
    const answer = askAboutSession(sessionId);
    if (sessions.size >= 10_000) sessions.clear();
    sessions.set(sessionId, answer); // concurrent requests share one question
    try {
      return await answer.active;
    } catch (error) {
      sessions.delete(sessionId);
      throw new AppError('UNAVAILABLE', 'The session cannot be checked: IAM is unreachable', { cause: error });
    }
  };
  // Permissions per combination of roles, worked out once per version of the role map.
  const permissionsByRoles = new WeakMap<AuthorizationData, Map<string, readonly string[]>>();
  const permissionsOf = (data: AuthorizationData, roles: readonly string[]): readonly string[] => {
    let known = permissionsByRoles.get(data);
    if (!known) permissionsByRoles.set(data, (known = new Map<string, readonly string[]>()));
    const key = roles.join('\n');
    let permissions = known.get(key);
    if (!permissions) known.set(key, (permissions = permissionsOfRoles(data, roles)));
    return permissions;
  };

  const loadAuthorization = (): Promise<AuthorizationData> => {
    loading ??= sources
      .authorization()
      .then((data) => {
        cached = { data, until: Date.now() + authorizationTtl };
        return data;
      })
      .catch((error: unknown) => {
        if (cached) return cached.data; // IAM unreachable: keep deciding with what we knew
        throw new AppError('UNAVAILABLE', 'Permissions cannot be resolved: IAM is unreachable', { cause: error });
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };
  const authorization = async (): Promise<AuthorizationData> => {
    if (cached && cached.until > Date.now()) {
      // Loaded again before it runs out, in the background (one load at a time): no request waits for IAM every TTL.
      if (cached.until - Date.now() <= authorizationTtl * (1 - REFRESH_AFTER)) loadAuthorization().catch(() => undefined);
      return cached.data;
    }
    return loadAuthorization();
  };

  const apiTokenIdentity = async (token: string): Promise<ApiTokenIdentity | null> => {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = apiTokens.get(key);
    if (hit && hit.until > Date.now()) return hit.identity;
    let identity: ApiTokenIdentity | null;
    try {
      identity = await sources.apiToken(token);
    } catch (error) {
      throw new AppError('UNAVAILABLE', 'The API token cannot be checked: IAM is unreachable', { cause: error });
    }
    if (apiTokens.size >= 10_000) apiTokens.clear();
    apiTokens.set(key, { identity, until: Date.now() + apiTokenTtl });
    return identity;
  };

  // A verified token stays valid until it expires (its signature cannot change), so clients that
  // reuse a token skip the signature check; permissions are still resolved on every request.
  const verified = new Map<string, { claims: AccessClaims; expiresAt: number }>();

  const verifyJwt = async (token: string): Promise<AuthUser> => {
    let claims: AccessClaims;
    const hit = verified.get(token);
    if (hit && hit.expiresAt > Date.now()) {
      claims = hit.claims;
    } else {
      try {
        ({ payload: claims } = await jwtVerify<AccessClaims>(token, sources.keys, {
          issuer: options.issuer ?? ACCESS_TOKEN_ISSUER,
          audience: options.audience ?? ACCESS_TOKEN_AUDIENCE,
          algorithms: ACCESS_TOKEN_ALGORITHMS,
          requiredClaims: ['sub', 'exp', 'sid'],
          clockTolerance: CLOCK_TOLERANCE_S,
        }));
      } catch (error) {
        if (error instanceof errors.JWKSTimeout || !(error instanceof errors.JOSEError)) {
          throw new AppError('UNAVAILABLE', 'The access token cannot be verified: IAM\'s keys are unreachable', { cause: error });
        }
        throw new AppError('UNAUTHENTICATED', error instanceof errors.JWTExpired ? 'The access token has expired' : 'The access token is invalid', { cause: error });
      }
      if (verified.size >= 10_000) verified.clear();
      verified.set(token, { claims, expiresAt: (Number(claims.exp) + CLOCK_TOLERANCE_S) * 1000 });
    }
    // The session's answer, not the token's claims, says what the user holds: roles and department are current.
    const session = await sessionActive(String(claims.sid));
    if (!session || session.userId !== claims.sub) throw new AppError('UNAUTHENTICATED', 'The session of this access token has ended (signed out or revoked); sign in again');
    const roles = [...session.roles].sort();
    return {
      id: claims.sub,
      roles,
      permissions: permissionsOf(await authorization(), roles),
      departmentCode: session.departmentCode,
      via: { kind: 'jwt', sessionId: String(claims.sid) },
    };
  };

  const authenticate = async (request: FastifyRequest): Promise<AuthUser | undefined> => {
    const header = request.headers.authorization;
    if (header === undefined) return undefined;
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) throw new AppError('UNAUTHENTICATED', 'The Authorization header must be "Bearer <token>"');
    return verifyToken(match[1]!);
  };

  const verifyToken = async (token: string): Promise<AuthUser> => {
    if (API_TOKEN_PATTERN.test(token)) {
      const identity = await apiTokenIdentity(token);
      if (!identity) throw new AppError('UNAUTHENTICATED', 'The API token is unknown, expired or revoked');
      return {
        id: identity.userId,
        roles: identity.roles,
        permissions: identity.scopes,
        departmentCode: identity.departmentCode,
        via: { kind: 'api-token', tokenId: identity.tokenId },
      };
    }
    return verifyJwt(token);
  };

  const requireUser: PreHandler = async (request, reply) => {
    let user: AuthUser | undefined;
    try {
      user = await authenticate(request);
    } catch (error) {
      if (error instanceof AppError && error.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer error="invalid_token"');
      throw error;
    }
    if (!user) {
      void reply.header('www-authenticate', 'Bearer');
      throw new AppError('UNAUTHENTICATED', 'This route needs an access token or API token: Authorization: Bearer <token>');
    }
    request.user = user;
  };

  const authorize = async (request: FastifyRequest, permission: string, resource?: ResourceContext): Promise<void> => {
    const decision = decide(await authorization(), userOf(request), permission, resource);
    if (!decision.allowed) throw new AppError('FORBIDDEN', `Not allowed: ${decision.reason}`);
  };

  const userOf = (request: FastifyRequest): AuthUser => {
    if (!request.user) throw new AppError('UNAUTHENTICATED', 'This route needs an access token or API token');
    return request.user;
  };

  return {
    authenticate,
    verifyToken,
    requireUser,
    requirePermission: (permission) => async (request, reply) => {
      await requireUser(request, reply);
      await authorize(request, permission);
    },
    authorize,
    userOf,
    invalidateAuthorization() {
      cached = undefined;
    },
  };
}
