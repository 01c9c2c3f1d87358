import { createCipheriv, createDecipheriv, createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, errors, importPKCS8, SignJWT, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import type { Kysely } from 'kysely';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER } from '@archipelago/platform/auth';
import type { IamDatabase } from '../database.ts';
import type { SigningKey } from './signing-key.table.ts';

export interface KeyStoreOptions {
  /** Lifetime of access tokens: a retired key stays published this long (plus a minute). */
  readonly accessTtlSeconds: number;
  /** A new key is published this long before it signs, so verifiers' JWKS caches learn it first. */
  readonly publishLeadSeconds: number;
  /** Encrypts private keys at rest (AES-256-GCM) when set. */
  readonly secret?: string;
  readonly now: () => number;
}

/** The claims of an access token: small on purpose (roles, not permissions). */
export interface AccessTokenClaims {
  readonly userId: string;
  readonly sessionId: string;
  readonly roles: readonly string[];
  readonly departmentCode: string | null;
}

const ALGORITHM = 'EdDSA';
const CACHE_MS = 5_000;
const UNKNOWN_KID_RELOAD_MS = 1_000;

/**
 * IAM's JWT signing keys (Ed25519), kept in `signing_keys`: the private half is used here and
 * never served; the public halves form the JWKS. Rotation adds a key that signs from
 * `now + publishLead`; the previous key stays published until its last token has expired.
 */
export function keyStore(db: Kysely<IamDatabase>, options: KeyStoreOptions) {
  let cache: { keys: SigningKey[]; until: number } | undefined;
  const privateKeys = new Map<string, ReturnType<typeof importPKCS8>>();

  const load = async (fresh = false): Promise<SigningKey[]> => {
    if (!fresh && cache && cache.until > options.now()) return cache.keys;
    const keys = await db.selectFrom('signing_keys').selectAll().orderBy('active_from').orderBy('created_at').execute();
    cache = { keys, until: options.now() + CACHE_MS };
    return keys;
  };

  // The key that signs now: the newest one already active.
  const current = (keys: SigningKey[]): SigningKey | undefined => keys.filter((k) => k.active_from.getTime() <= options.now()).at(-1);

  // Keys whose tokens may still be alive, and keys about to sign.
  const published = (keys: SigningKey[]): SigningKey[] => {
    const keep = (options.accessTtlSeconds + 60) * 1000;
    return keys.filter((key, i) => {
      const successor = keys.slice(i + 1).find((k) => k.active_from.getTime() <= options.now());
      return !successor || successor.active_from.getTime() > options.now() - keep;
    });
  };

  const jwks = async (fresh = false): Promise<JSONWebKeySet> => ({
    keys: published(await load(fresh)).map((k) => ({ ...k.public_jwk, kid: k.kid, alg: k.algorithm, use: 'sig' })),
  });

  const signingKey = (key: SigningKey): ReturnType<typeof importPKCS8> => {
    let imported = privateKeys.get(key.kid);
    if (!imported) {
      imported = importPKCS8(key.encrypted ? decrypt(key.private_key, requireSecret(options.secret)) : key.private_key, key.algorithm);
      privateKeys.set(key.kid, imported);
    }
    return imported;
  };

  let lastReload = Number.NEGATIVE_INFINITY;
  const store = {
    /** Adds a key that signs from now + publishLead (or `activeFrom`); returns its kid. */
    async rotate(activeFrom = new Date(options.now() + options.publishLeadSeconds * 1000)): Promise<{ kid: string; activeFrom: Date }> {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
      const kid = await calculateJwkThumbprint(publicJwk);
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await db
        .insertInto('signing_keys')
        .values({
          kid,
          algorithm: ALGORITHM,
          public_jwk: JSON.stringify(publicJwk),
          private_key: options.secret ? encrypt(pem, options.secret) : pem,
          encrypted: options.secret !== undefined,
          active_from: activeFrom,
        })
        .execute();
      cache = undefined;
      return { kid, activeFrom };
    },
    /** On start: a first key, active at once, when there is none. */
    async ensureKey(): Promise<void> {
      if (!current(await load(true))) await store.rotate(new Date(options.now()));
    },
    jwks,
    /** Signs an access token with the current key. */
    async signAccessToken(claims: AccessTokenClaims): Promise<{ token: string; expiresIn: number }> {
      let key = current(await load());
      if (!key) {
        await store.ensureKey();
        key = current(await load(true))!;
      }
      const issuedAt = Math.floor(options.now() / 1000);
      const token = await new SignJWT({ roles: claims.roles, sid: claims.sessionId, ...(claims.departmentCode ? { dept: claims.departmentCode } : {}) })
        .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'at+jwt' })
        .setSubject(claims.userId)
        .setIssuer(ACCESS_TOKEN_ISSUER)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + options.accessTtlSeconds)
        .sign(await signingKey(key));
      return { token, expiresIn: options.accessTtlSeconds };
    },
    /**
     * IAM's own verification keys: its JWKS, re-read on an unknown kid at most once a second (a
     * stream of made-up kids must not become a stream of database reads).
     */
    verifyKeys: (async (header, token) => {
      try {
        return await createLocalJWKSet(await jwks())(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || options.now() - lastReload < UNKNOWN_KID_RELOAD_MS) throw error;
        lastReload = options.now();
        return createLocalJWKSet(await jwks(true))(header, token);
      }
    }) satisfies JWTVerifyGetKey,
  };
  return store;
}

export type KeyStore = ReturnType<typeof keyStore>;

function requireSecret(secret: string | undefined): string {
  if (!secret) throw new Error('A signing key is encrypted but IAM_SIGNING_KEY_SECRET is not set');
  return secret;
}

const aesKey = (secret: string) => createHash('sha256').update(secret).digest();

function encrypt(plain: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey(secret), iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), body].map((part) => (typeof part === 'string' ? part : part.toString('base64'))).join(':');
}

function decrypt(stored: string, secret: string): string {
  const [version, iv, tag, body] = stored.split(':');
  if (version !== 'v1' || !iv || !tag || !body) throw new Error('A signing key is stored in an unknown format');
  const decipher = createDecipheriv('aes-256-gcm', aesKey(secret), Buffer.from(iv, 'base64'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
}
