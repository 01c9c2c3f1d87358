import type { Registry } from '@archipelago/registry';
import { StartupError } from '@archipelago/platform/startup';
import {
  createServiceCredentials, keyringFromEnv, localKeyring, OPERATOR, principalsOf, privateKeyFromText, privateKeyVariableOf,
  type Keyring, type ServiceCredentials,
} from '@archipelago/platform/internal-auth';
import { localSettings } from './stack.ts';

/**
 * The keys the CLI hands out: from the environment when `SERVICE_PUBLIC_KEYS` is set (several
 * machines share one set), else `.data/credentials.json`, generated on first use.
 */
export async function cliKeyring(registry: Registry, env: Readonly<Record<string, string | undefined>>): Promise<Keyring> {
  const principals = principalsOf(registry);
  return keyringFromEnv(principals, env) ?? localKeyring(localSettings(env).dataDir, principals);
}

/** The operator's credentials, which every CLI call to an internal endpoint signs with. */
export async function operatorCredentials(registry: Registry, env: Readonly<Record<string, string | undefined>>): Promise<ServiceCredentials> {
  const variable = privateKeyVariableOf(OPERATOR);
  const text = env[variable] || (await cliKeyring(registry, env)).privateKey(OPERATOR);
  if (!text) throw new StartupError(`The operator's key is unknown: set ${variable} (\`npm run cli -- credentials env operator\` prints it where it was generated)`);
  try {
    return createServiceCredentials({ principal: OPERATOR, privateKey: privateKeyFromText(text), publicKeys: {} });
  } catch (error) {
    throw new StartupError(`${variable} is not an Ed25519 private key (base64 PKCS#8)`, { cause: error });
  }
}

const quoted = (value: string) => `'${value}'`;

/**
 * `archipelago credentials env [<principal>]`: the variables one process needs (a service's
 * `SERVICE_PRIVATE_KEY` and `SERVICE_PUBLIC_KEYS`, or the operator's `OPERATOR_PRIVATE_KEY`), or,
 * without a principal, every key as `.env` lines for the compose files.
 */
export async function credentialsCommand(registry: Registry, principal: string | undefined, env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): Promise<number> {
  const keyring = await cliKeyring(registry, env);
  if (principal === undefined) {
    say('# Service credentials (keep this file private): each service gets only its own private key.');
    say(`SERVICE_PUBLIC_KEYS=${quoted(keyring.publicKeysJson())}`);
    for (const p of keyring.principals) say(`${privateKeyVariableOf(p)}=${quoted(keyring.privateKey(p) ?? '')}`);
    return 0;
  }
  if (!keyring.principals.includes(principal)) {
    process.stderr.write(`No principal "${principal}": one of ${keyring.principals.join(', ')}\n`);
    return 2;
  }
  if (principal === OPERATOR) {
    say(`${privateKeyVariableOf(OPERATOR)}=${quoted(keyring.privateKey(OPERATOR) ?? '')}`);
    return 0;
  }
  for (const [name, value] of Object.entries(keyring.environmentOf(principal))) say(`${name}=${quoted(value)}`);
  return 0;
}
