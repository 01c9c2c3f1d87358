import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import Type from 'typebox';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER } from '../auth/authenticator.ts';
import type { AuthorizationData, Policy } from '../auth/types.ts';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadRegistry } from '@archipelago/registry';
import { createHttpServer } from '../http.ts';
import { testCredentials } from './credentials.ts';

/** A user the test identity provider knows and can issue tokens for. */
export interface TestUser {
  readonly id: string;
  readonly roles: readonly string[];
  readonly departmentCode: string | null;
}

/** IAM's side of a service's tests: issues real signed tokens and answers IAM's internal endpoints. */
export interface TestIdentity {
  /** Base URL to use as the service's `IAM_URL` (`remoteAuthSources(url)`, user references). */
  readonly url: string;
  /** A known user (admin unless told otherwise). */
  user(options?: { roles?: readonly string[]; departmentCode?: string | null }): TestUser;
  /** An access token of `user`, signed like IAM's (EdDSA, kid, issuer, audience, 10 min, or until `expiresAt`). */
  token(user: TestUser, options?: { expiresAt?: Date }): Promise<string>;
  /** Makes a user unknown to `/internal/v1/users/validate`, as deleting it in IAM would. */
  forget(user: TestUser): void;
  /** Ends the session of every token issued so far for `user`, as signing out would. */
  signOut(user: TestUser): void;
  close(): Promise<void>;
}

/** Anything requests can be injected into: an app, or a function standing for one. */
export interface Injectable {
  inject(options: InjectOptions): Promise<LightMyRequestResponse>;
}

/** An app whose injected requests carry `token`, as a signed-in client's would. */
export function asUser(app: Injectable, token: string): Injectable {
  return {
    inject: (options: InjectOptions) => app.inject({ ...options, headers: { authorization: `Bearer ${token}`, ...options.headers } }),
  };
}

// The default roles, as IAM's seed makes them: admin holds every permission the registry declares
// (a new service's included), viewer every read, staff every read and orders and resources writes.
function defaultRoles(): Record<string, readonly string[]> {
  const permissions = loadRegistry(undefined, {}).services.flatMap((s) => s.permissions ?? []);
  const reads = permissions.filter((p) => p.endsWith(':read'));
  return { admin: permissions, staff: [...reads, 'orders:write', 'resources:write'], viewer: reads };
}

/**
 * For services' own tests: a small stand-in for IAM on loopback, with IAM's token format and
 * internal endpoints (JWKS, authorization, user validation), which, like IAM's, need a service
 * token (callers use `testCredentials(<their key>)`). The real IAM is exercised by its own
 * tests and by the system tests in `tests/system/`.
 *
 * @example
 * const identity = await startTestIdentity();
 * const auth = createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('core') }) });
 * const token = await identity.token(identity.user());
 */
export async function startTestIdentity(options: { roles?: Record<string, readonly string[]>; policies?: readonly Policy[] } = {}): Promise<TestIdentity> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const kid = `test-${randomUUID()}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const authorization: AuthorizationData = {
    roles: options.roles ?? defaultRoles(),
    policies: options.policies ?? [],
  };
  const users = new Map<string, TestUser>();
  const sessionsOf = new Map<string, string[]>(); // user id → session ids
  const holderOf = new Map<string, TestUser>(); // session id → its user (a forgotten user's sessions stay on)
  const ended = new Set<string>();

  const app = await createHttpServer({ service: 'iam', logger: false, credentials: testCredentials('iam') });
  app.get('/.well-known/jwks.json', async () => ({ keys: [jwk] }));
  app.get('/internal/v1/authorization', async () => authorization);
  app.post('/internal/v1/api-tokens/introspect', async () => ({ active: false }));
  app.post(
    '/internal/v1/sessions/active',
    { schema: { body: Type.Object({ ids: Type.Array(Type.String({ format: 'uuid' }), { maxItems: 1000 }) }) } },
    async (request) => {
      const on = request.body.ids.filter((id) => !ended.has(id) && holderOf.has(id));
      const sessions = on.map((id) => {
        const user = holderOf.get(id)!;
        return { id, userId: user.id, roles: user.roles, departmentCode: user.departmentCode };
      });
      return { active: on, sessions };
    },
  );
  app.post(
    '/internal/v1/users/validate',
    { schema: { body: Type.Object({ ids: Type.Array(Type.String({ format: 'uuid' }), { maxItems: 1000 }) }) } },
    async (request) => ({ users: request.body.ids.filter((id) => users.has(id)).map((id) => ({ id, active: true })) }),
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  return {
    url,
    user(choice = {}) {
      const user: TestUser = { id: randomUUID(), roles: choice.roles ?? ['admin'], departmentCode: choice.departmentCode ?? null };
      users.set(user.id, user);
      return user;
    },
    token(user, { expiresAt } = {}) {
      const sid = randomUUID();
      sessionsOf.set(user.id, [...(sessionsOf.get(user.id) ?? []), sid]);
      holderOf.set(sid, user);
      return new SignJWT({ roles: [...user.roles], sid, dept: user.departmentCode })
        .setProtectedHeader({ alg: 'EdDSA', kid })
        .setSubject(user.id)
        .setIssuer(ACCESS_TOKEN_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(expiresAt ? new Date(expiresAt.getTime() - 600_000) : undefined)
        .setExpirationTime(expiresAt ?? '10m')
        .sign(privateKey);
    },
    signOut(user) {
      for (const sid of sessionsOf.get(user.id) ?? []) ended.add(sid);
    },
    forget(user) {
      users.delete(user.id);
    },
    close: () => app.close(),
  };
}
