import { envPrefix } from '@archipelago/registry';
import { updateLocalSecrets } from '../local-secrets.ts';
import { StartupError } from '../startup.ts';
import { generateServiceKeyPair, OPERATOR } from './credentials.ts';
import { PRIVATE_KEY_VARIABLE, PUBLIC_KEYS_VARIABLE } from './environment.ts';

/** Every principal's key pair, as text: what `npm start` hands out and `credentials env` prints. */
export interface Keyring {
  readonly principals: readonly string[];
  /** `principal`'s private key, or undefined when this keyring does not hold it. */
  privateKey(principal: string): string | undefined;
  /** `SERVICE_PUBLIC_KEYS`: every principal's public key, as JSON. */
  publicKeysJson(): string;
  /** The two variables a principal's process reads. */
  environmentOf(principal: string): Record<string, string>;
}

/** Where a principal's key is kept in `.data/credentials.json` and `.env`: `CORE_SERVICE_PRIVATE_KEY`, `OPERATOR_PRIVATE_KEY`. */
export function privateKeyVariableOf(principal: string): string {
  return principal === OPERATOR ? 'OPERATOR_PRIVATE_KEY' : `${envPrefix(principal)}_${PRIVATE_KEY_VARIABLE}`;
}

const publicKeyVariableOf = (principal: string) => (principal === OPERATOR ? 'OPERATOR_PUBLIC_KEY' : `${envPrefix(principal)}_SERVICE_PUBLIC_KEY`);

function keyringOf(principals: readonly string[], privateKeys: Record<string, string | undefined>, publicKeys: Record<string, string>): Keyring {
  const publicKeysJson = () => JSON.stringify(Object.fromEntries(principals.filter((p) => publicKeys[p]).map((p) => [p, publicKeys[p]!])));
  return {
    principals,
    privateKey: (principal) => privateKeys[principal],
    publicKeysJson,
    environmentOf(principal) {
      const key = privateKeys[principal];
      if (!key) throw new StartupError(`No private key for ${principal}: set ${privateKeyVariableOf(principal)}`);
      return { [PRIVATE_KEY_VARIABLE]: key, [PUBLIC_KEYS_VARIABLE]: publicKeysJson() };
    },
  };
}

/**
 * The keyring configured in the environment (separate machines, compose): `SERVICE_PUBLIC_KEYS`
 * and the private keys present as `<KEY>_SERVICE_PRIVATE_KEY` / `OPERATOR_PRIVATE_KEY`.
 * Undefined when `SERVICE_PUBLIC_KEYS` is not set.
 */
export function keyringFromEnv(principals: readonly string[], env: Readonly<Record<string, string | undefined>>): Keyring | undefined {
  const text = env[PUBLIC_KEYS_VARIABLE];
  if (!text) return undefined;
  let publicKeys: Record<string, string>;
  try {
    publicKeys = JSON.parse(text) as Record<string, string>;
  } catch (error) {
    throw new StartupError(`${PUBLIC_KEYS_VARIABLE} is not JSON`, { cause: error });
  }
  return keyringOf(principals, Object.fromEntries(principals.map((p) => [p, env[privateKeyVariableOf(p)] || undefined])), publicKeys);
}

/**
 * The local keyring of `npm start`: key pairs generated on first use and kept in
 * `<dataDir>/credentials.json` (mode 0600) beside the embedded roles' passwords.
 */
export async function localKeyring(dataDir: string, principals: readonly string[]): Promise<Keyring> {
  const stored = await updateLocalSecrets(dataDir, "the services' keys", (found) => {
    let changed = false;
    for (const principal of principals) {
      if (found[privateKeyVariableOf(principal)] && found[publicKeyVariableOf(principal)]) continue;
      const pair = generateServiceKeyPair();
      found[privateKeyVariableOf(principal)] = pair.privateKey;
      found[publicKeyVariableOf(principal)] = pair.publicKey;
      changed = true;
    }
    return changed;
  });
  return keyringOf(
    principals,
    Object.fromEntries(principals.map((p) => [p, stored[privateKeyVariableOf(p)]])),
    Object.fromEntries(principals.map((p) => [p, stored[publicKeyVariableOf(p)]!])),
  );
}
