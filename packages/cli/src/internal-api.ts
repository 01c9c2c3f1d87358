import { envPrefix, loadRegistry, type Service } from '@archipelago/registry';
import { StartupError } from '@archipelago/platform/startup';
import { internalFetch } from '@archipelago/platform/internal-auth';
import { operatorCredentials } from './credentials.ts';

/** A call to a running service's internal API failed with this problem. */
export class InternalApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'InternalApiError';
  }
}

/** Where a running service answers: `<KEY>_URL`, or its registry port on loopback. */
export function serviceUrl(service: Service, env: Readonly<Record<string, string | undefined>>): string {
  return env[`${envPrefix(service.key)}_URL`] ?? `http://127.0.0.1:${service.port}`;
}

/**
 * Calls a running service's internal (not gateway-routed) endpoint as the operator (with a JSON body, if given) and returns its JSON.
 * A service that is not running is a StartupError saying so; a problem answer is an
 * InternalApiError carrying the problem's detail.
 */
export async function callService<T>(
  service: Service,
  env: Readonly<Record<string, string | undefined>>,
  request: { method?: 'GET' | 'POST' | 'DELETE'; path: string; body?: unknown },
): Promise<T | undefined> {
  const url = new URL(request.path, serviceUrl(service, env));
  const credentials = await operatorCredentials(loadRegistry(undefined, env), env);
  let response: Response;
  try {
    const body = request.body === undefined ? {} : { body: JSON.stringify(request.body), headers: { 'content-type': 'application/json' } };
    response = await internalFetch(credentials, service.key, url, { method: request.method ?? 'GET', signal: AbortSignal.timeout(120_000), ...body });
  } catch (error) {
    throw new StartupError(`${service.key} is not answering at ${url.origin} (${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}). Start the system with \`npm start\` first.`);
  }
  if (response.status === 204) return undefined;
  const body = (await response.json()) as T & { detail?: string };
  if (!response.ok) throw new InternalApiError(response.status, `${service.key}: ${body.detail ?? response.statusText}`);
  return body;
}
