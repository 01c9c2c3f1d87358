import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Registry } from '@archipelago/registry';
import { ConfigError } from '../config.ts';
import { createServiceCredentials, OPERATOR, privateKeyFromText, publicKeyFromText, type ServiceCredentials } from './credentials.ts';

/** The variable holding a process's own private key. */
export const PRIVATE_KEY_VARIABLE = 'SERVICE_PRIVATE_KEY';
/** The variable holding every principal's public key, as JSON `{ principal: key }` (not secret). */
export const PUBLIC_KEYS_VARIABLE = 'SERVICE_PUBLIC_KEYS';

/** Every principal that may hold a credential: each service of the registry, and the operator. */
export function principalsOf(registry: Registry): string[] {
  const keys = registry.services.map((s) => s.key);
  if (keys.includes(OPERATOR)) throw new Error(`A service may not be called "${OPERATOR}": the name is the CLI's principal`);
  return [...keys, OPERATOR];
}

/** Parses `SERVICE_PUBLIC_KEYS`; every problem names the variable. */
export function publicKeysFromText(text: string | undefined, variable = PUBLIC_KEYS_VARIABLE): Record<string, KeyObject> {
  const hint = 'print it with `npm run cli -- credentials env <service>`';
  if (!text) throw new ConfigError([{ variable, message: `is required: every principal's public key as JSON (${hint})` }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError([{ variable, message: `is not JSON (${hint})` }]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError([{ variable, message: 'must be a JSON object: principal → public key' }]);
  const keys: Record<string, KeyObject> = {};
  for (const [principal, value] of Object.entries(parsed as Record<string, unknown>)) {
    try {
      keys[principal] = publicKeyFromText(String(value));
    } catch {
      throw new ConfigError([{ variable, message: `holds no Ed25519 public key for "${principal}"` }]);
    }
  }
  return keys;
}

/**
 * A process's credentials from its environment: its own private key (`SERVICE_PRIVATE_KEY`) and
 * every principal's public key (`SERVICE_PUBLIC_KEYS`).
 */
export function serviceCredentialsFromEnv(principal: string, env: Readonly<Record<string, string | undefined>>): ServiceCredentials {
  const publicKeys = publicKeysFromText(env[PUBLIC_KEYS_VARIABLE]);
  const text = env[PRIVATE_KEY_VARIABLE];
  if (!text) throw new ConfigError([{ variable: PRIVATE_KEY_VARIABLE, message: `is required: ${principal}'s Ed25519 private key (\`npm run cli -- credentials env ${principal}\` prints it)` }]);
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyFromText(text);
  } catch {
    throw new ConfigError([{ variable: PRIVATE_KEY_VARIABLE, message: 'is not an Ed25519 private key (base64 PKCS#8)' }]);
  }
  const own = publicKeys[principal];
  if (own && !createPublicKey(privateKey).equals(own)) {
    throw new ConfigError([{ variable: PRIVATE_KEY_VARIABLE, message: `does not match ${principal}'s key in ${PUBLIC_KEYS_VARIABLE}` }]);
  }
  return createServiceCredentials({ principal, privateKey, publicKeys });
}
