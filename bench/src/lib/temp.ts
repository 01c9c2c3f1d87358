import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { registerCleanup } from './cleanup.ts';

export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

/**
 * A fresh data directory, removed by `remove()` or at the latest when the bench exits. Mode 0755:
 * as root, the embedded PostgreSQL runs as the `postgres` user, which must be able to enter it.
 */
export async function makeDataDir(prefix: string): Promise<TempDir> {
  const dir = await mkdtemp(path.join(tmpdir(), `archipelago-bench-${prefix}-`));
  await chmod(dir, 0o755);
  const remove = registerCleanup(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return { path: dir, remove };
}
