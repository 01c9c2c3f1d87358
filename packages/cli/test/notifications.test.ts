import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { testCredentialsEnv, testOperatorKey } from '@archipelago/platform/testing/credentials';
import { archiveJob } from '../../../services/notification/src/archive/archive.ts';
import { archiveRepository } from '../../../services/notification/src/archive/archive.repository.ts';
import { fileObjectStore } from '../../../services/notification/src/archive/object-store.ts';
import { notificationRepository } from '../../../services/notification/src/notifications/notification.repository.ts';
import { notificationTestApp } from '../../../services/notification/test/notification-app.ts';
import { notifications } from '../src/commands/notifications.ts';

describe('archipelago notifications restore', async () => {
  const registry = loadRegistry(undefined, {});
  const directory = await mkdtemp(path.join(tmpdir(), 'cli-archives-'));
  afterAll(() => rm(directory, { recursive: true, force: true }));
  const store = fileObjectStore(directory);
  const { db, server } = await notificationTestApp({ archives: store });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const repository = notificationRepository(db);
  const rows = await db.transaction().execute((trx) =>
    repository.insert(trx, ['08:00', '09:00'].map((time) => ({ department_code: 'LAB', user_id: null, notification_type: 'T', title: time, message: 'm', created_at: new Date(`2026-10-01T${time}:00Z`), created_by: 'test' }))));
  await archiveJob(archiveRepository(db), store, { now: () => new Date('2026-12-01T00:00:00Z') })({ trigger: 'manual', tick: undefined, signal: new AbortController().signal });
  const present = async () => (await sql<{ id: string }>`SELECT id FROM notifications WHERE id = ANY(${rows.map((r) => r.id)}::uuid[])`.execute(db)).rows.length;
  const env = { NOTIFICATION_URL: url, OPERATOR_PRIVATE_KEY: testOperatorKey() };

  it("puts an archived day back through the running service's operator route", async () => {
    expect(await present()).toBe(0);
    const lines: string[] = [];
    expect(await notifications(registry, 'restore', { department: 'LAB', day: '2026-10-01' }, env, (line) => lines.push(line))).toBe(0);
    expect(lines).toEqual(["LAB 2026-10-01: 2 of the archive's 2 notifications restored."]);
    expect(await present()).toBe(2);
    lines.length = 0;
    expect(await notifications(registry, 'restore', { department: 'LAB', day: '2026-10-01' }, env, (line) => lines.push(line))).toBe(0);
    expect(lines[0]).toContain('0 of the archive');
  });

  it('says there is no archive of that day', async () => {
    await expect(notifications(registry, 'restore', { department: 'LAB', day: '2020-01-01' }, env, () => undefined)).rejects.toThrow('No archive of LAB on 2020-01-01');
  });

  it('is refused without the operator\'s key', async () => {
    const coreKey = { ...env, OPERATOR_PRIVATE_KEY: testCredentialsEnv('core').SERVICE_PRIVATE_KEY! };
    await expect(notifications(registry, 'restore', { department: 'LAB', day: '2026-10-01' }, coreKey, () => undefined)).rejects.toMatchObject({ status: 401 });
  });

  it('names what it needs when the department or the day is not one', async () => {
    const lines: string[] = [];
    for (const args of [{ department: 'LAB' }, { department: 'lab; drop', day: '2026-10-01' }, { department: 'LAB', day: '2026-13-45' }]) {
      expect(await notifications(registry, 'restore', args, env, (line) => lines.push(line))).toBe(2);
    }
    expect(lines[0]).toContain('needs a department code');
  });
});
