import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from './startup.ts';

/**
 * Reads `<dataDir>/credentials.json` (the embedded roles' passwords and the services' keys of
 * `npm start`), lets `fill` add what is missing, and writes it back only if `fill` says it changed
 * something: aside and renamed into place (a crash never leaves a truncated file), mode 0600.
 *
 * @example
 * const stored = await updateLocalSecrets(dataDir, 'the embedded roles\' passwords', (s) => { s.X ??= random(); return true; });
 */
export async function updateLocalSecrets(dataDir: string, what: string, fill: (stored: Record<string, string>) => boolean): Promise<Record<string, string>> {
  const file = path.join(dataDir, 'credentials.json');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  let stored: Record<string, string> = {};
  try {
    if (text !== undefined) stored = JSON.parse(text) as Record<string, string>;
  } catch (error) {
    throw new StartupError(`${file} is not valid JSON, so ${what} are unknown. Restore it, or move it away to start with new ones.`, { cause: error });
  }
  if (fill(stored)) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const partial = `${file}.${process.pid}.tmp`;
    await writeFile(partial, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
    await chmod(partial, 0o600);
    await rename(partial, file);
  }
  return stored;
}
