import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where archives go: one small interface; a directory by default (S3 is the next implementation). */
export interface ObjectStore {
  put(key: string, body: Buffer): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  /** Size and SHA-256 of what is stored, read back from the store. */
  head(key: string): Promise<{ size: number; sha256: string } | undefined>;
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');

/** An object store in a directory: keys are relative paths; a put is a write then a rename (never half an object). */
export function fileObjectStore(root: string): ObjectStore {
  const fileOf = (key: string) => {
    const file = path.resolve(root, key);
    if (!file.startsWith(path.resolve(root) + path.sep)) throw new Error(`object key ${key} leaves the store`);
    return file;
  };
  // A missing file is an absent object; any other failure is the caller's to see.
  const orAbsent = <T>(absent: T) => (error: unknown): T => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return absent;
    throw error;
  };
  return {
    async put(key, body) {
      const file = fileOf(key);
      await mkdir(path.dirname(file), { recursive: true });
      const partial = `${file}.${process.pid}.partial`;
      await writeFile(partial, body);
      await rename(partial, file);
    },
    async get(key) {
      return readFile(fileOf(key)).catch(orAbsent(undefined));
    },
    async head(key) {
      const body = await this.get(key);
      return body === undefined ? undefined : { size: (await stat(fileOf(key))).size, sha256: sha256(body) };
    },
    async list(prefix) {
      const directory = path.dirname(fileOf(prefix.endsWith('/') ? `${prefix}x` : prefix));
      const walk = async (dir: string): Promise<string[]> => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(orAbsent([]));
        const found = await Promise.all(entries.map((entry) => (entry.isDirectory() ? walk(path.join(dir, entry.name)) : Promise.resolve([path.join(dir, entry.name)]))));
        return found.flat();
      };
      return (await walk(directory))
        .map((file) => path.relative(path.resolve(root), file).split(path.sep).join('/'))
        .filter((key) => key.startsWith(prefix) && !key.endsWith('.partial'))
        .sort();
    },
    async delete(key) {
      await rm(fileOf(key), { force: true });
    },
  };
}

export { sha256 };
