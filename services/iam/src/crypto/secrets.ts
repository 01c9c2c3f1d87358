import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random secret, URL-safe: 32 bytes give 43 characters. */
export const randomSecret = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** SHA-256 of a high-entropy secret; such secrets need no slow hash, only no plain storage. */
export const sha256 = (secret: string): Buffer => createHash('sha256').update(secret).digest();

export const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);
