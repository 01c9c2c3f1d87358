import type { ServiceCredentials } from './credentials.ts';

/**
 * `fetch` towards another service's internal API, carrying this principal's service token for
 * `audience` (the callee's registry key). Every internal call goes through it.
 *
 * @example
 * const response = await internalFetch(credentials, 'iam', new URL('/internal/v1/users/validate', iamUrl), { method: 'POST', body });
 */
export async function internalFetch(credentials: ServiceCredentials, audience: string, url: string | URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(await credentials.headers(audience))) headers.set(name, value);
  return fetch(url, { ...init, headers });
}
