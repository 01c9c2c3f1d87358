import { envPrefix, type Registry } from '@archipelago/registry';
import { StartupError } from '@archipelago/platform/startup';
import { internalFetch } from '@archipelago/platform/internal-auth';
import { operatorCredentials } from '../credentials.ts';

export type IamAction = 'rotate-keys';

/**
 * `archipelago iam rotate-keys`: asks the running IAM (at `IAM_URL`, or its registry port on
 * loopback) to add a signing key. IAM alone handles private keys, so the CLI never touches one.
 */
export async function iam(registry: Registry, action: IamAction, env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): Promise<void> {
  const service = registry.service('iam');
  const port = env[`${envPrefix(service.key)}_PORT`] ?? String(service.port);
  const base = (env.IAM_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, '');
  const credentials = await operatorCredentials(registry, env);
  let response: Response;
  try {
    response = await internalFetch(credentials, service.key, `${base}/internal/v1/signing-keys/${action === 'rotate-keys' ? 'rotate' : action}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new StartupError(`Cannot reach IAM at ${base} (${(error as Error).message}). Start it first (npm start), or set IAM_URL.`, { cause: error });
  }
  if (!response.ok) throw new StartupError(`IAM at ${base} refused to rotate its signing keys: HTTP ${response.status} ${await response.text()}`);
  const { kid, activeFrom } = (await response.json()) as { kid: string; activeFrom: string };
  say(`New signing key ${kid}: published now, signs from ${activeFrom}.`);
  say('Tokens signed with the previous key stay valid until they expire; it is unpublished after that.');
}
