import { hash, verify, type Algorithm } from '@node-rs/argon2';

// argon2id with the library's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommendation).
const ARGON2ID = 2 as Algorithm;

export const hashPassword = (password: string): Promise<string> => hash(password, { algorithm: ARGON2ID });

// Verifying against this costs what verifying a real hash costs, so an unknown email takes as
// long to refuse as a wrong password.
let dummy: Promise<string> | undefined;

/** Checks a password; with no stored hash it burns the same time and says no. */
export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<boolean> {
  if (!storedHash) {
    dummy ??= hashPassword('not the password of anyone');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  return verify(storedHash, password).catch(() => false);
}
