import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { loadRegistry } from '@archipelago/registry';
import { createServiceCredentials, OPERATOR, SERVICE_TOKEN_HEADER, type ServiceCredentials } from '../internal-auth/credentials.ts';
import { principalsOf, PRIVATE_KEY_VARIABLE, PUBLIC_KEYS_VARIABLE } from '../internal-auth/environment.ts';
import type { Injectable } from './identity.ts';

export { OPERATOR } from '../internal-auth/credentials.ts';

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

// Test keys are derived from the principal's name, so every test process (workers, the CLI and
// consumers they spawn) holds the same ones without passing files around. Tests only.
const privateKeys = new Map<string, KeyObject>();
function testPrivateKey(principal: string): KeyObject {
  let key = privateKeys.get(principal);
  if (!key) {
    const seed = createHash('sha256').update(`archipelago test principal ${principal}`).digest();
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    privateKeys.set(principal, key);
  }
  return key;
}

const textOf = (key: KeyObject) => key.export({ format: 'der', type: key.type === 'private' ? 'pkcs8' : 'spki' }).toString('base64');

/** Every registry principal and the operator: the principals test credentials trust. */
export function testPrincipals(): string[] {
  return principalsOf(loadRegistry(undefined, {}));
}

function testPublicKeys(): Record<string, KeyObject> {
  return Object.fromEntries(testPrincipals().map((p) => [p, createPublicKey(testPrivateKey(p))]));
}

const cached = new Map<string, ServiceCredentials>();

/**
 * `principal`'s credentials in tests: its own test key, and every principal's public test key.
 * Pass them to `buildApp({ credentials })` and to outgoing helpers, as `runService` would.
 *
 * @example
 * const app = await buildApp({ db, logger: false, credentials: testCredentials('core'), … });
 */
export function testCredentials(principal: string): ServiceCredentials {
  let credentials = cached.get(principal);
  if (!credentials) {
    credentials = createServiceCredentials({ principal, privateKey: testPrivateKey(principal), publicKeys: testPublicKeys() });
    cached.set(principal, credentials);
  }
  return credentials;
}

/** The variables a service process started by a test reads (`SERVICE_PRIVATE_KEY`, `SERVICE_PUBLIC_KEYS`). */
export function testCredentialsEnv(principal: string): Record<string, string> {
  const publicKeys = Object.fromEntries(testPrincipals().map((p) => [p, textOf(createPublicKey(testPrivateKey(p)))]));
  return { [PRIVATE_KEY_VARIABLE]: textOf(testPrivateKey(principal)), [PUBLIC_KEYS_VARIABLE]: JSON.stringify(publicKeys) };
}

/** The operator's private key, as the CLI reads it from `OPERATOR_PRIVATE_KEY`. */
export function testOperatorKey(): string {
  return textOf(testPrivateKey(OPERATOR));
}

/**
 * A service token signed by hand, for tests of refusals: `signedBy` another principal's key,
 * already expired, or for another audience.
 */
export async function testServiceToken(
  principal: string,
  audience: string,
  options: { signedBy?: string; issuedAtSeconds?: number; ttlSeconds?: number } = {},
): Promise<string> {
  const iat = options.issuedAtSeconds ?? Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(principal)
    .setSubject(principal)
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.ttlSeconds ?? 60))
    .sign(testPrivateKey(options.signedBy ?? principal));
}

/**
 * An app whose injected requests carry `principal`'s service token, as another service's or the
 * CLI's calls would. The audience is the app's service (asked once at `/health/live`) unless given.
 *
 * @example
 * const feed = await asPrincipal(app, 'core').inject({ url: '/internal/v1/events' });
 * const rotated = await asPrincipal(app, OPERATOR).inject({ method: 'POST', url: '/internal/v1/signing-keys/rotate' });
 */
export function asPrincipal(app: Injectable, principal: string, audience?: string): Injectable {
  const credentials = testCredentials(principal);
  let target: Promise<string> | undefined;
  const audienceOf = () => (target ??= audience !== undefined ? Promise.resolve(audience) : serviceOf(app));
  return {
    inject: async (options) => app.inject({ ...options, headers: { [SERVICE_TOKEN_HEADER]: await credentials.token(await audienceOf()), ...options.headers } }),
  };
}

/** The registry key of the service behind an app, as its `/health/live` says. */
export async function serviceOf(app: Injectable): Promise<string> {
  const live = await app.inject({ url: '/health/live' });
  const service = live.json<{ service?: string }>().service;
  if (live.statusCode !== 200 || !service) throw new Error(`/health/live did not name the service (HTTP ${live.statusCode})`);
  return service;
}
