import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { notificationRepository } from '../src/notifications/notification.repository.ts';
import { pruneAppliedEventsJob } from '../src/notifications/notification.service.ts';
import { seed } from '../src/seed.ts';
import { monthStart, partitionJobs } from '../src/notifications/partitions.ts';
import { notificationTestApp } from './notification-app.ts';

describe('notification storage', async () => {
  const { db, database } = await notificationTestApp();
  const repository = notificationRepository(db);
  const insertAt = (createdAt: Date) =>
    db.transaction().execute((trx) => repository.insert(trx, [{ department_code: 'LAB', user_id: null, notification_type: 'TEST', title: 't', message: 'm', created_at: createdAt, created_by: 'test' }]));
  const partitionOf = async (id: string) => (await sql<{ p: string }>`SELECT tableoid::regclass::text AS p FROM notifications WHERE id = ${id}`.execute(db)).rows[0]!.p;

  it('has this month and the next two as partitions, and a default one', async () => {
    const names = (await repository.partitions()).map((p) => p.name);
    const now = new Date();
    for (const offset of [0, 1, 2]) expect(names).toContain(`notifications_y${monthStart(now, offset).slice(0, 4)}m${monthStart(now, offset).slice(5, 7)}`);
    expect(names).toContain('notifications_default');
  });

  it('takes an insert into a month that has no partition (the default one), and the drain job moves it into its month', async () => {
    const [old] = await insertAt(new Date('2020-02-10T12:00:00Z'));
    expect(await partitionOf(old!.id)).toBe('notifications_default');
    const jobs = partitionJobs(notificationRepository(db));
    const result = await jobs['partitions.drain-default']({ trigger: 'manual', tick: undefined, signal: new AbortController().signal });
    expect(result).toEqual({ moved: { '2020-02-01': 1 } });
    expect(await partitionOf(old!.id)).toBe('notifications_y2020m02');
    expect((await repository.partitions()).find((p) => p.name === 'notifications_default')!.rows).toBe(0);
    // The moved row still answers through the parent, and the new partition has the parent's indexes.
    expect((await sql`SELECT id FROM notifications WHERE id = ${old!.id}`.execute(db)).rows).toHaveLength(1);
    const indexes = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE tablename = 'notifications_y2020m02'`.execute(db);
    expect(indexes.rows.length).toBeGreaterThanOrEqual(5);
  });

  it("forgets core's events applied more than 8 days ago, and only those", async () => {
    await sql`INSERT INTO applied_events (event_id, applied_at) VALUES (gen_random_uuid(), now() - interval '9 days'), (gen_random_uuid(), now() - interval '7 days')`.execute(db);
    const result = await pruneAppliedEventsJob(repository)({ trigger: 'manual', tick: undefined, signal: new AbortController().signal });
    expect(result).toEqual({ deleted: 1 });
    expect((await sql`SELECT 1 FROM applied_events`.execute(db)).rows).toHaveLength(1);
  });

  it('seeds the welcome broadcast once, however often the seed runs', async () => {
    await withOwnerDatabase(database, seed);
    await withOwnerDatabase(database, seed);
    expect((await sql`SELECT 1 FROM notifications WHERE notification_type = 'system.welcome'`.execute(db)).rows).toHaveLength(1);
  });

  it('creates the months ahead, once, under the app role (no DDL rights of its own)', async () => {
    const later = new Date('2031-05-20T00:00:00Z');
    const jobs = partitionJobs(notificationRepository(db), () => later);
    const context = { trigger: 'manual' as const, tick: undefined, signal: new AbortController().signal };
    expect(await jobs['partitions.create-ahead'](context)).toEqual({ created: ['2031-05-01', '2031-06-01', '2031-07-01', '2031-08-01'] });
    expect(await jobs['partitions.create-ahead'](context)).toEqual({ created: [] });
    const [row] = await insertAt(new Date('2031-06-03T00:00:00Z'));
    expect(await partitionOf(row!.id)).toBe('notifications_y2031m06');
    const denied = await sql`CREATE TABLE sneaky (id int)`.execute(database.db).then(() => 'created', () => 'refused');
    expect(denied).toBe('refused');
  });
});
