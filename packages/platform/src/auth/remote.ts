import { createRemoteJWKSet } from 'jose';
import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import { internalFetch } from '../internal-auth/fetch.ts';
import type { ActiveSession, ApiTokenIdentity, AuthorizationData, AuthSources } from './types.ts';

export interface RemoteAuthOptions {
  /** The calling service's credentials: IAM's internal endpoints need its service token. */
  readonly credentials: ServiceCredentials;
  /** Shortest time between two JWKS fetches caused by unknown `kid`s (default 30 s). */
  readonly jwksCooldownMs?: number;
  /** Per-request timeout towards IAM (default 3 s). */
  readonly timeoutMs?: number;
}

/**
 * The auth sources of every service but IAM: IAM's JWKS (`/.well-known/jwks.json`) and its
 * internal authorization and API-token endpoints, reached at `iamUrl` (from `IAM_URL`).
 */
export function remoteAuthSources(iamUrl: string, options: RemoteAuthOptions): AuthSources {
  const base = iamUrl.replace(/\/$/, '');
  const timeoutMs = options.timeoutMs ?? 3_000;
  const call = async <T>(path: string, init?: RequestInit): Promise<T> => {
    const response = await internalFetch(options.credentials, 'iam', `${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`IAM answered ${path} with HTTP ${response.status}`);
    return (await response.json()) as T;
  };
  const keys = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`), {
    cooldownDuration: options.jwksCooldownMs ?? 30_000,
    timeoutDuration: timeoutMs,
  });
  return {
    keys,
    // Once fetched, the keys stay usable while IAM is away; before that no token can be verified.
    async keysReady() {
      if (keys.jwks()?.keys.length) return;
      await keys.reload();
      if (!keys.jwks()?.keys.length) throw new Error('IAM published no signing keys');
    },
    authorization: () => call<AuthorizationData>('/internal/v1/authorization'),
    async sessionActive(sessionId) {
      const answer = await call<{ sessions: (ActiveSession & { id: string })[] }>('/internal/v1/sessions/active', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids: [sessionId] }),
      });
      const session = answer.sessions.find((s) => s.id === sessionId);
      return session ? { userId: session.userId, roles: session.roles, departmentCode: session.departmentCode } : null;
    },
    async apiToken(token) {
      const answer = await call<{ active: boolean; identity?: ApiTokenIdentity }>('/internal/v1/api-tokens/introspect', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      return answer.active && answer.identity ? answer.identity : null;
    },
  };
}
