import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeJwt, errors, jwtVerify, SignJWT } from 'jose';

/** The principal the CLI signs as; every other principal is a service key of the registry. */
export const OPERATOR = 'operator';

/** The header a caller's service token travels in (never `Authorization`: users' tokens pass untouched). */
export const SERVICE_TOKEN_HEADER = 'x-service-token';

/** Longest lifetime a service token may claim. */
export const SERVICE_TOKEN_MAX_TTL_SECONDS = 60;

const CLOCK_TOLERANCE_SECONDS = 5;
// Renewed when less than this is left, so a token never expires on its way.
const RENEW_BEFORE_SECONDS = 20;

/** Why a presented service token was refused; `detail` is safe to show the caller. */
export class ServiceTokenError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'ServiceTokenError';
  }
}

/** One principal's view of the credentials: its own key (to sign) and every principal's public key (to verify). */
export interface ServiceCredentials {
  /** Who signs: a service key or `operator`. */
  readonly principal: string;
  /** A token for calls to `audience` (a service key), cached and renewed before it expires. */
  token(audience: string): Promise<string>;
  /** The headers a call to `audience` carries (`x-service-token`). */
  headers(audience: string): Promise<Record<string, string>>;
  /** Checks a token meant for this principal; resolves to its signer, rejects with a ServiceTokenError. */
  verify(token: string): Promise<string>;
}

export interface ServiceCredentialsOptions {
  readonly principal: string;
  /** This principal's Ed25519 private key; without it, `token` rejects (a verifier only). */
  readonly privateKey?: KeyObject;
  /** Public key of every principal allowed to call, by principal. */
  readonly publicKeys: Readonly<Record<string, KeyObject>>;
  /** Lifetime of the tokens this principal signs (default and maximum 60 s). */
  readonly ttlSeconds?: number;
}

/**
 * Short-lived self-signed EdDSA JWTs between services (iss = sub = signer, aud = callee).
 * Each process holds only its own private key and every principal's public key, so nothing is
 * shared and nothing depends on where a service runs.
 *
 * @example
 * const credentials = createServiceCredentials({ principal: 'core', privateKey, publicKeys });
 * await fetch(url, { headers: await credentials.headers('iam') });
 */
export function createServiceCredentials(options: ServiceCredentialsOptions): ServiceCredentials {
  const ttl = Math.min(options.ttlSeconds ?? SERVICE_TOKEN_MAX_TTL_SECONDS, SERVICE_TOKEN_MAX_TTL_SECONDS);
  const minted = new Map<string, { token: Promise<string>; renewAt: number }>();
  // Verified tokens by their exact text: a token is reused for a minute, its signature checked once.
  const verified = new Map<string, { principal: string; exp: number }>();

  const sign = async (audience: string): Promise<string> => {
    if (!options.privateKey) throw new Error(`${options.principal} has no private key, so it cannot call ${audience}`);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .setIssuer(options.principal)
      .setSubject(options.principal)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(options.privateKey);
  };

  const token = (audience: string): Promise<string> => {
    const cached = minted.get(audience);
    if (cached && Date.now() < cached.renewAt) return cached.token;
    const fresh = sign(audience);
    minted.set(audience, { token: fresh, renewAt: Date.now() + Math.max(ttl - RENEW_BEFORE_SECONDS, ttl / 2) * 1000 });
    fresh.catch(() => minted.delete(audience));
    return fresh;
  };

  const verify = async (presented: string): Promise<string> => {
    const now = Date.now() / 1000;
    const known = verified.get(presented);
    if (known && known.exp + CLOCK_TOLERANCE_SECONDS > now) return known.principal;
    let issuer: unknown;
    try {
      issuer = decodeJwt(presented).iss;
    } catch {
      throw new ServiceTokenError('The service token is not a JWT');
    }
    const key = typeof issuer === 'string' && Object.hasOwn(options.publicKeys, issuer) ? options.publicKeys[issuer] : undefined;
    if (!key) throw new ServiceTokenError(`The service token's issuer ${JSON.stringify(issuer ?? null)} is not a known principal`);
    const principal = issuer as string;
    try {
      const { payload } = await jwtVerify(presented, key, {
        algorithms: ['EdDSA'],
        issuer: principal,
        subject: principal,
        audience: options.principal,
        requiredClaims: ['iat', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (payload.exp! - payload.iat! > SERVICE_TOKEN_MAX_TTL_SECONDS) {
        throw new ServiceTokenError(`The service token lives longer than ${SERVICE_TOKEN_MAX_TTL_SECONDS} s`);
      }
      if (payload.iat! > now + CLOCK_TOLERANCE_SECONDS) throw new ServiceTokenError('The service token is issued in the future');
      if (verified.size >= 1_000) verified.clear();
      verified.set(presented, { principal, exp: payload.exp! });
      return principal;
    } catch (error) {
      if (error instanceof ServiceTokenError) throw error;
      if (error instanceof errors.JWTExpired) throw new ServiceTokenError('The service token has expired');
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud') {
        throw new ServiceTokenError(`The service token is meant for another service, not ${options.principal}`);
      }
      if (error instanceof errors.JWSSignatureVerificationFailed) throw new ServiceTokenError(`The service token is not signed by ${principal}'s key`);
      throw new ServiceTokenError(`The service token is invalid (${(error as Error).message})`);
    }
  };

  return {
    principal: options.principal,
    token,
    async headers(audience) {
      return { [SERVICE_TOKEN_HEADER]: await token(audience) };
    },
    verify,
  };
}

/** A fresh Ed25519 key pair, both halves as single-line text (base64 DER: PKCS#8 and SPKI). */
export function generateServiceKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
  };
}

/** Reads a private key written by `generateServiceKeyPair`. */
export function privateKeyFromText(text: string): KeyObject {
  const key = createPrivateKey({ key: Buffer.from(text.trim(), 'base64'), format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('is not an Ed25519 private key');
  return key;
}

/** Reads a public key written by `generateServiceKeyPair`. */
export function publicKeyFromText(text: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(text.trim(), 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('is not an Ed25519 public key');
  return key;
}
