import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as S3 from '@aws-sdk/client-s3';

/** Where archives go: one small interface; a directory by default, S3 when configured. */
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

/** Where an S3-compatible store is and who we are to it. */
export interface S3StoreOptions {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
}

/**
 * An object store in an S3 bucket (path-style, so MinIO and other S3-compatible servers serve it).
 * `head` reads the object back and hashes what came back, not what was sent.
 */
export function s3ObjectStore(options: S3StoreOptions): ObjectStore {
  // The SDK (~1 MB of code) is loaded at the first call: a notification service archiving to a directory never carries it.
  let connecting: Promise<{ sdk: typeof S3; client: S3.S3Client }> | undefined;
  const connect = () =>
    (connecting ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      client: new sdk.S3Client({
        endpoint: options.endpoint,
        region: options.region,
        forcePathStyle: true,
        // Checksums only where S3 requires them: S3-compatible servers differ on the newer trailers.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...(options.accessKeyId && options.secretAccessKey ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
      }),
    })));
  const Bucket = options.bucket;
  const get = async (key: string) => {
    const { sdk, client } = await connect();
    try {
      const object = await client.send(new sdk.GetObjectCommand({ Bucket, Key: key }));
      return { body: Buffer.from(await object.Body!.transformToByteArray()), length: object.ContentLength };
    } catch (error) {
      if (error instanceof sdk.NoSuchKey) return undefined;
      throw error;
    }
  };
  return {
    async put(key, body) {
      const { sdk, client } = await connect();
      await client.send(new sdk.PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: 'application/gzip' }));
    },
    async get(key) {
      return (await get(key))?.body;
    },
    async head(key) {
      const object = await get(key);
      if (!object) return undefined;
      if (object.length !== undefined && object.length !== object.body.length) throw new Error(`object ${key}: ${object.body.length} bytes read of ${object.length}`);
      return { size: object.body.length, sha256: sha256(object.body) };
    },
    async list(prefix) {
      const { sdk, client } = await connect();
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }));
        for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async delete(key) {
      const { sdk, client } = await connect();
      await client.send(new sdk.DeleteObjectCommand({ Bucket, Key: key }));
    },
  };
}

export { sha256 };
