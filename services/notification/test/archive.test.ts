import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@archipelago/platform';
import { asPrincipal, OPERATOR } from '@archipelago/platform/testing/credentials';
import { archiveJob, archiveKey } from '../src/archive/archive.ts';
import { archiveRepository, type ArchiveRepository } from '../src/archive/archive.repository.ts';
import { fileObjectStore, s3ObjectStore, type ObjectStore } from '../src/archive/object-store.ts';
import { notificationRepository } from '../src/notifications/notification.repository.ts';
import { notificationTestApp } from './notification-app.ts';
import { S3RVER_CREDENTIALS, startS3Server } from './s3-server.ts';

const context = { trigger: 'manual' as const, tick: undefined, signal: new AbortController().signal };
const NOW = new Date('2026-12-01T12:00:00Z');

// The same archival, crash and restore tests over each object store.
const stores: Record<string, () => Promise<{ store: ObjectStore; close: () => Promise<void> }>> = {
  directory: async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'notification-archives-'));
    return { store: fileObjectStore(directory), close: () => rm(directory, { recursive: true, force: true }) };
  },
  's3 (s3rver)': async () => {
    const s3 = await startS3Server();
    return { store: s3ObjectStore({ endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', ...S3RVER_CREDENTIALS }), close: () => s3.close() };
  },
};

describe.each(Object.keys(stores))('archival to %s', async (kind) => {
  const backing = await stores[kind]!();
  afterAll(backing.close);
  const { store } = backing;
  const { db, server } = await notificationTestApp({ archives: store });
  const notifications = notificationRepository(db);
  const repository = archiveRepository(db);
  const reader = randomUUID();
  const insert = (department: string | null, at: string, user: string | null = null) =>
    db.transaction().execute(async (trx) => (await notifications.insert(trx, [{ department_code: department, user_id: user, notification_type: 'T', title: at, message: 'm', created_at: new Date(at), created_by: 'test' }]))[0]!);
  const ids = async () => new Set((await sql<{ id: string }>`SELECT id FROM notifications`.execute(db)).rows.map((r) => r.id));
  const linesOf = async (key: string) => gunzipSync((await store.get(key))!).toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as { id: string; receipts: { user_id: string }[] });
  const partitionNames = async () => (await notifications.partitions()).map((p) => p.name);

  it('moves rows older than the retention to gzip JSONL per department and day, removing exactly those rows', async () => {
    const old = [await insert('LAB', '2026-10-01T08:00:00Z'), await insert('LAB', '2026-10-01T09:00:00Z'), await insert('RADIO', '2026-10-01T10:00:00Z'), await insert('LAB', '2026-10-02T10:00:00Z'), await insert(null, '2026-10-03T10:00:00Z', reader)];
    const recent = await insert('LAB', '2026-11-20T10:00:00Z');
    await db.transaction().execute((trx) => notifications.mark(trx, { userId: reader, departmentCode: 'LAB' }, old[0]!.id, ['read_at']));

    const result = await archiveJob(repository, store, { now: () => NOW })(context);
    expect(result).toEqual({ objects: 4, archived: 5, droppedPartitions: [], expiredArchives: 0 });
    const left = await ids();
    for (const row of old) expect(left.has(row.id)).toBe(false);
    expect(left.has(recent.id)).toBe(true);
    expect(await store.list('archived-notifications/')).toEqual([
      archiveKey('LAB', '2026-10-01'), archiveKey('LAB', '2026-10-02'), archiveKey('RADIO', '2026-10-01'), archiveKey('_none', '2026-10-03'),
    ].sort());
    const lab = await linesOf(archiveKey('LAB', '2026-10-01'));
    expect(lab.map((l) => l.id)).toEqual([old[0]!.id, old[1]!.id]);
    expect(lab[0]!.receipts.map((r) => r.user_id)).toEqual([reader]);
    expect((await sql`SELECT 1 FROM notification_receipts WHERE notification_id = ${old[0]!.id}`.execute(db)).rows).toHaveLength(0);
    expect(await archiveJob(repository, store, { now: () => NOW })(context)).toEqual({ objects: 0, archived: 0, droppedPartitions: [], expiredArchives: 0 });
  });

  it('takes its retention from the options: 60 days keeps what 30 days archives', async () => {
    const row = await insert('LAB', '2026-10-20T08:00:00Z');
    expect(await archiveJob(repository, store, { now: () => NOW, retentionDays: 60 })(context)).toMatchObject({ objects: 0, archived: 0 });
    expect((await ids()).has(row.id)).toBe(true);
    expect(await archiveJob(repository, store, { now: () => NOW })(context)).toMatchObject({ objects: 1, archived: 1 });
    expect((await ids()).has(row.id)).toBe(false);
  });

  it('loses nothing and stores nothing twice when it dies between upload and delete', async () => {
    const rows = [await insert('PHARM', '2026-09-05T08:00:00Z'), await insert('PHARM', '2026-09-05T09:00:00Z')];
    const crashing: ObjectStore = { ...store, head: () => Promise.reject(new Error('killed after the upload')) };
    await expect(archiveJob(repository, crashing, { now: () => NOW })(context)).rejects.toThrow('killed after the upload');
    expect([...(await ids())].filter((id) => rows.some((r) => r.id === id))).toHaveLength(2);
    expect(await archiveJob(repository, store, { now: () => NOW })(context)).toMatchObject({ objects: 1, archived: 2 });
    expect((await linesOf(archiveKey('PHARM', '2026-09-05'))).map((l) => l.id)).toEqual(rows.map((r) => r.id));
  });

  it('loses nothing and stores nothing twice when it dies between two delete batches', async () => {
    const rows = [await insert('RADIO', '2026-09-10T08:00:00Z'), await insert('RADIO', '2026-09-10T09:00:00Z'), await insert('RADIO', '2026-09-10T10:00:00Z')];
    let batches = 0;
    const dying: ArchiveRepository = { ...repository, remove: (day, batch) => (++batches === 2 ? Promise.reject(new Error('killed mid-delete')) : repository.remove(day, batch)) };
    await expect(archiveJob(dying, store, { now: () => NOW, batchSize: 2 })(context)).rejects.toThrow('killed mid-delete');
    expect([...(await ids())].filter((id) => rows.some((r) => r.id === id))).toEqual([rows[2]!.id]);
    expect(await archiveJob(repository, store, { now: () => NOW, batchSize: 2 })(context)).toMatchObject({ objects: 1, archived: 1 });
    expect((await linesOf(archiveKey('RADIO', '2026-09-10'))).map((l) => l.id)).toEqual(rows.map((r) => r.id));
    expect([...(await ids())].filter((id) => rows.some((r) => r.id === id))).toEqual([]);
  });

  it("drops a month's partition once it is fully archived, and no month that is not wholly past the retention", async () => {
    await notifications.ensurePartition('2026-08-01');
    await notifications.ensurePartition('2026-11-01');
    const august = [await insert('LAB', '2026-08-10T08:00:00Z'), await insert('RADIO', '2026-08-31T23:59:59Z')];
    const november = await insert('LAB', '2026-11-25T08:00:00Z');
    expect(await partitionNames()).toEqual(expect.arrayContaining(['notifications_y2026m08', 'notifications_y2026m11']));

    const result = await archiveJob(repository, store, { now: () => NOW })(context);
    expect(result).toMatchObject({ objects: 2, archived: 2, droppedPartitions: ['2026-08-01'] });
    const names = await partitionNames();
    expect(names).not.toContain('notifications_y2026m08');
    expect(names).toEqual(expect.arrayContaining(['notifications_y2026m11', 'notifications_y2026m12', 'notifications_default']));
    expect((await ids()).has(november.id)).toBe(true);
    expect((await linesOf(archiveKey('LAB', '2026-08-10'))).map((l) => l.id)).toEqual([august[0]!.id]);
    // A row back in a dropped month (a restore) lands in the default partition.
    const restored = await asPrincipal(server, OPERATOR).inject({ method: 'POST', url: '/internal/v1/archives/restore', payload: { department: 'LAB', day: '2026-08-10' } });
    expect(restored.json()).toEqual({ restored: 1, inArchive: 1 });
    expect((await sql<{ p: string }>`SELECT tableoid::regclass::text AS p FROM notifications WHERE id = ${august[0]!.id}`.execute(db)).rows[0]!.p).toBe('notifications_default');
  });

  it('restores a day from its archive (the operator, through the internal route), receipts included', async () => {
    const operator = asPrincipal(server, OPERATOR);
    const response = await operator.inject({ method: 'POST', url: '/internal/v1/archives/restore', payload: { department: 'LAB', day: '2026-10-01' } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ restored: 2, inArchive: 2 });
    expect((await sql`SELECT 1 FROM notification_receipts WHERE user_id = ${reader}::uuid`.execute(db)).rows).toHaveLength(1);
    expect((await operator.inject({ method: 'POST', url: '/internal/v1/archives/restore', payload: { department: 'LAB', day: '2026-10-01' } })).json()).toEqual({ restored: 0, inArchive: 2 });
    expect((await operator.inject({ method: 'POST', url: '/internal/v1/archives/restore', payload: { department: 'LAB', day: '2020-01-01' } })).statusCode).toBe(404);
  });

  it('deletes archives older than a year', async () => {
    const later = new Date('2027-10-02T12:00:00Z');
    const result = await archiveJob(repository, store, { now: () => later })(context);
    // LAB and RADIO of 2026-10-01 (LAB re-archived), PHARM of 09-05, RADIO of 09-10, LAB of 08-10 and RADIO of 08-31
    expect(result).toMatchObject({ expiredArchives: 6 });
    expect(await store.list('archived-notifications/')).toEqual(expect.arrayContaining([archiveKey('LAB', '2026-10-02'), archiveKey('_none', '2026-10-03')]));
  });
});

describe('archival to S3 configured from the environment', async () => {
  const s3 = await startS3Server('configured');
  afterAll(() => s3.close());
  const secret = `secret-${randomUUID()}`;
  const lines: string[] = [];
  const logger = createLogger('notification', 'debug', { write: (line: string) => void lines.push(line) });
  const env = { OBJECT_STORAGE_URL: s3.endpoint, OBJECT_STORAGE_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, OBJECT_STORAGE_SECRET_ACCESS_KEY: secret, NOTIFICATION_ARCHIVE_BUCKET: s3.bucket };
  const { db, server } = await notificationTestApp({ archives: 'env', env, logger });
  const refused = await notificationTestApp({ archives: 'env', env: { ...env, OBJECT_STORAGE_ACCESS_KEY_ID: 'UNKNOWN' }, logger });
  const insertOld = (target: typeof db) =>
    target.transaction().execute(async (trx) => (await notificationRepository(target).insert(trx, [{ department_code: 'LAB', user_id: null, notification_type: 'T', title: 't', message: 'm', created_at: new Date(Date.now() - 40 * 86_400_000), created_by: 'test' }]))[0]!);
  const run = (app: typeof server) => asPrincipal(app, OPERATOR).inject({ method: 'POST', url: '/internal/v1/jobs/archive.run/run' });

  it('archives into the bucket named by the environment, and never logs the secret key, even when S3 refuses', async () => {
    const row = await insertOld(db);
    const response = await run(server);
    expect(response.statusCode, response.body).toBe(200);
    const key = archiveKey('LAB', new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10));
    const reader = s3ObjectStore({ endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', ...S3RVER_CREDENTIALS });
    expect(await reader.list('archived-notifications/')).toEqual([key]);
    expect(gunzipSync((await reader.get(key))!).toString()).toContain(row.id);

    await insertOld(refused.db);
    expect((await run(refused.server)).json()).toMatchObject({ job: { lastRun: { outcome: 'failed' } } });
    expect(lines.join('\n')).toContain('job failed');
    expect(lines.join('\n')).not.toContain(secret);
  });
});

// Archival and restore change unread counts outside the API: every instance's cached badges follow.
describe('archival and restore move the badges', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'notification-archives-'));
  afterAll(() => rm(directory, { recursive: true, force: true }));
  const store = fileObjectStore(directory);
  const { server, identity, db } = await notificationTestApp({ archives: store });
  const repository = archiveRepository(db);
  const admin = identity.user({ roles: ['admin'], departmentCode: 'LAB' });
  const member = identity.user({ roles: ['staff'], departmentCode: 'PHARM' });
  const as = async (user: typeof admin) => {
    const token = await identity.token(user);
    return (request: { method?: 'GET' | 'POST'; url: string; payload?: object }) => server.inject({ ...request, method: request.method ?? 'GET', headers: { authorization: `Bearer ${token}` } });
  };
  const served = async () => (await (await as(member))({ url: '/api/v1/notifications/unread-count' })).json<{ total: number }>().total;
  // The change reaches the cache through LISTEN; wait for it (bounded), then the count must be exact.
  const servedOnce = async (expected: number) => {
    for (let i = 0; i < 200 && (await served()) !== expected; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return served();
  };

  it('drops the cached counts of the users and departments whose notifications left or came back', async () => {
    const post = await as(admin);
    for (const target of [{ department_code: 'PHARM' }, { department_code: 'PHARM' }, { user_id: member.id }]) {
      expect((await post({ method: 'POST', url: '/api/v1/notifications', payload: { ...target, notification_type: 'T', title: 't', message: 'm' } })).statusCode).toBe(201);
    }
    expect(await served()).toBe(3);
    const later = new Date(Date.now() + 40 * 24 * 60 * 60_000);
    expect(await archiveJob(repository, store, { now: () => later })(context)).toMatchObject({ archived: 3 });
    expect(await servedOnce(0)).toBe(0);
    const day = new Date().toISOString().slice(0, 10);
    expect(await asPrincipal(server, OPERATOR).inject({ method: 'POST', url: '/internal/v1/archives/restore', payload: { department: 'PHARM', day } }).then((r) => r.json<unknown>())).toEqual({ restored: 2, inArchive: 2 });
    expect(await servedOnce(2)).toBe(2);
    expect(Number((await sql<{ n: string }>`SELECT count(*) AS n FROM notifications`.execute(db)).rows[0]!.n)).toBe(2);
  });
});
