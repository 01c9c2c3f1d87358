import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { asPrincipal, OPERATOR } from '@archipelago/platform/testing/credentials';
import { archiveJob, archiveKey } from '../src/archive/archive.ts';
import { archiveRepository } from '../src/archive/archive.repository.ts';
import { fileObjectStore, type ObjectStore } from '../src/archive/object-store.ts';
import { notificationRepository } from '../src/notifications/notification.repository.ts';
import { notificationTestApp } from './notification-app.ts';

const context = { trigger: 'manual' as const, tick: undefined, signal: new AbortController().signal };
const NOW = new Date('2026-12-01T12:00:00Z');

describe('archival', async () => {
  const { db, archiveDir, server } = await notificationTestApp();
  const notifications = notificationRepository(db);
  const repository = archiveRepository(db);
  const store = fileObjectStore(archiveDir);
  const reader = randomUUID();
  const insert = (department: string | null, at: string, user: string | null = null) =>
    db.transaction().execute(async (trx) => (await notifications.insert(trx, [{ department_code: department, user_id: user, notification_type: 'T', title: at, message: 'm', created_at: new Date(at), created_by: 'test' }]))[0]!);
  const ids = async () => new Set((await sql<{ id: string }>`SELECT id FROM notifications`.execute(db)).rows.map((r) => r.id));
  const linesOf = async (key: string) => gunzipSync(await readFile(path.join(archiveDir, key))).toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as { id: string; receipts: { user_id: string }[] });

  it('moves rows older than the retention to gzip JSONL per department and day, removing exactly those rows', async () => {
    const old = [await insert('LAB', '2026-10-01T08:00:00Z'), await insert('LAB', '2026-10-01T09:00:00Z'), await insert('RADIO', '2026-10-01T10:00:00Z'), await insert('LAB', '2026-10-02T10:00:00Z'), await insert(null, '2026-10-03T10:00:00Z', reader)];
    const recent = await insert('LAB', '2026-11-20T10:00:00Z');
    await db.transaction().execute((trx) => notifications.mark(trx, { userId: reader, departmentCode: 'LAB' }, old[0]!.id, ['read_at']));

    const result = await archiveJob(repository, store, { now: () => NOW })(context);
    expect(result).toEqual({ objects: 4, archived: 5, expiredArchives: 0 });
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
    expect(await archiveJob(repository, store, { now: () => NOW })(context)).toEqual({ objects: 0, archived: 0, expiredArchives: 0 });
  });

  it('loses nothing and stores nothing twice when it dies between upload and delete', async () => {
    const rows = [await insert('PHARM', '2026-09-05T08:00:00Z'), await insert('PHARM', '2026-09-05T09:00:00Z')];
    const crashing: ObjectStore = { ...store, head: () => Promise.reject(new Error('killed after the upload')) };
    await expect(archiveJob(repository, crashing, { now: () => NOW })(context)).rejects.toThrow('killed after the upload');
    expect([...(await ids())].filter((id) => rows.some((r) => r.id === id))).toHaveLength(2);
    expect(await archiveJob(repository, store, { now: () => NOW })(context)).toMatchObject({ objects: 1, archived: 2 });
    expect((await linesOf(archiveKey('PHARM', '2026-09-05'))).map((l) => l.id)).toEqual(rows.map((r) => r.id));
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
    expect(result).toMatchObject({ expiredArchives: 3 }); // LAB and RADIO of 2026-10-01 (LAB re-archived), PHARM of 2026-09-05
    expect(await store.list('archived-notifications/')).toEqual(expect.arrayContaining([archiveKey('LAB', '2026-10-02'), archiveKey('_none', '2026-10-03')]));
  });
});
