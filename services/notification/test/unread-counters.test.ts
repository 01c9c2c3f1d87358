import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { useTestDatabase } from '@archipelago/platform/testing';
import { archiveRepository, type ArchivedNotification } from '../src/archive/archive.repository.ts';
import { PRIORITIES, type NotificationDatabase, type Priority } from '../src/database.ts';
import { notificationRepository, type ReceiptField, type Viewer } from '../src/notifications/notification.repository.ts';
import { partitionJobs } from '../src/notifications/partitions.ts';
import { freshUnreadCounts } from './notification-app.ts';

const USERS = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c'];
const DEPARTMENTS = ['LAB', 'RADIO'];
// Every user as a member of each department and of none: counts must follow a user who moves.
const VIEWERS: Viewer[] = USERS.flatMap((userId) => [...DEPARTMENTS, null].map((departmentCode) => ({ userId, departmentCode })));

type Target = { kind: 'broadcast'; department: number } | { kind: 'own'; user: number; department: number | null };
type Step =
  | { kind: 'insert'; targets: { target: Target; priority: Priority; type: string }[] }
  | { kind: 'bulk'; department: number; rows: number }
  | { kind: 'mark'; user: number; pick: number; fields: ReceiptField[] }
  | { kind: 'read-all'; viewer: number; type?: string }
  | { kind: 'soft-delete' | 'reprioritise' | 'forget-receipts'; pick: number; priority: Priority }
  | { kind: 'archive'; group: number; take: number }
  | { kind: 'restore' }
  | { kind: 'old'; month: number; target: Target; priority: Priority }
  | { kind: 'drain' };

const priority = fc.constantFrom(...PRIORITIES);
const target: fc.Arbitrary<Target> = fc.oneof(
  fc.record({ kind: fc.constant('broadcast' as const), department: fc.nat(DEPARTMENTS.length - 1) }),
  fc.record({ kind: fc.constant('own' as const), user: fc.nat(USERS.length - 1), department: fc.option(fc.nat(DEPARTMENTS.length - 1), { nil: null }) }),
);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), targets: fc.array(fc.record({ target, priority, type: fc.constantFrom('A', 'B') }), { minLength: 1, maxLength: 5 }) }),
  fc.record({ kind: fc.constant('bulk' as const), department: fc.nat(DEPARTMENTS.length - 1), rows: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constant('mark' as const), user: fc.nat(USERS.length - 1), pick: fc.nat(), fields: fc.subarray(['read_at', 'seen_at', 'archived_at', 'actioned_at'] as ReceiptField[], { minLength: 1 }) }),
  fc.record({ kind: fc.constant('read-all' as const), viewer: fc.nat(VIEWERS.length - 1), type: fc.option(fc.constantFrom('A', 'B'), { nil: undefined }) }),
  fc.record({ kind: fc.constantFrom('soft-delete' as const, 'reprioritise' as const, 'forget-receipts' as const), pick: fc.nat(), priority }),
  fc.record({ kind: fc.constant('archive' as const), group: fc.nat(DEPARTMENTS.length), take: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('restore' as const) }),
  // A month with no partition yet (the default one), and the job that moves its rows into their own.
  fc.record({ kind: fc.constant('old' as const), month: fc.integer({ min: 1, max: 12 }), target, priority }),
  fc.record({ kind: fc.constant('drain' as const) }),
);

// The counters the triggers keep, against a count over the tables, after every kind of change
// any code makes: the repository's inserts and receipts, bulk SQL (as the bench fills the table),
// updates, the archive's deletes and restores, rows moved out of the default partition, a TRUNCATE;
// for each user in every department.
describe('unread counters', async () => {
  const database = await useTestDatabase('notification');
  const db = database.db as Kysely<NotificationDatabase>;
  const repository = notificationRepository(db);
  const archive = archiveRepository(db);

  // Counted as the badges are: many users at once, one query.
  const expectExact = async (after: string) => {
    for (const departmentCode of [...DEPARTMENTS, null]) {
      const viewers = VIEWERS.filter((viewer) => viewer.departmentCode === departmentCode);
      const kept = await repository.unreadCounts(viewers);
      for (const viewer of viewers) expect(kept.get(viewer.userId), `${viewer.userId} in ${departmentCode ?? 'no department'} after ${after}`).toEqual(await freshUnreadCounts(db, viewer));
    }
  };
  const ids = async () => (await sql<{ id: string }>`SELECT id FROM notifications ORDER BY created_at, id`.execute(db)).rows.map((row) => row.id);
  const picked = async (pick: number) => {
    const all = await ids();
    return all.length === 0 ? undefined : all[pick % all.length]!;
  };
  let archived: ArchivedNotification[] = [];

  const insert = (rows: readonly { target: Target; priority: Priority; type: string; at?: Date }[]) =>
    db.transaction().execute((trx) =>
      repository.insert(trx, rows.map(({ target: t, priority: p, type, at }) => ({
        department_code: t.department === null ? null : DEPARTMENTS[t.department]!, user_id: t.kind === 'own' ? USERS[t.user]! : null,
        notification_type: type, title: 't', message: 'm', priority: p, created_by: 'test', created_at: at,
      }))));

  const apply = async (s: Step): Promise<void> => {
    if (s.kind === 'insert') {
      await insert(s.targets);
    } else if (s.kind === 'old') {
      await insert([{ target: s.target, priority: s.priority, type: 'A', at: new Date(Date.UTC(2020, s.month - 1, 15)) }]);
    } else if (s.kind === 'drain') {
      await partitionJobs(repository)['partitions.drain-default']({ trigger: 'manual', tick: undefined, signal: new AbortController().signal });
    } else if (s.kind === 'bulk') {
      await sql`
        INSERT INTO notifications (department_code, notification_type, title, message, priority, created_by)
        SELECT ${DEPARTMENTS[s.department]!}, 'A', 'bulk', 'm', (ARRAY['CRITICAL', 'HIGH', 'NORMAL', 'LOW'])[1 + g % 4], 'test' FROM generate_series(1, ${s.rows}::int) AS g`.execute(db);
    } else if (s.kind === 'mark') {
      const id = await picked(s.pick);
      // Any user, any notification (one not theirs to see too): receipts of those count for nothing.
      if (id) await db.transaction().execute((trx) => repository.mark(trx, { userId: USERS[s.user]!, departmentCode: null }, id, s.fields));
    } else if (s.kind === 'read-all') {
      await db.transaction().execute((trx) => repository.readAll(trx, VIEWERS[s.viewer]!, s.type));
    } else if (s.kind === 'soft-delete' || s.kind === 'reprioritise' || s.kind === 'forget-receipts') {
      const id = await picked(s.pick);
      if (!id) return;
      if (s.kind === 'soft-delete') await sql`UPDATE notifications SET deleted_at = now() WHERE id = ${id}::uuid`.execute(db);
      if (s.kind === 'reprioritise') await sql`UPDATE notifications SET priority = ${s.priority} WHERE id = ${id}::uuid`.execute(db);
      if (s.kind === 'forget-receipts') await sql`DELETE FROM notification_receipts WHERE notification_id = ${id}::uuid`.execute(db);
    } else if (s.kind === 'archive') {
      const day = new Date().toISOString().slice(0, 10);
      const lines = (await archive.rowsOf(DEPARTMENTS[s.group] ?? '_none', day, new Date(Date.now() + 60_000))).slice(0, s.take);
      if (lines.length === 0) return;
      await archive.remove(day, lines.map((line) => line.id));
      archived.push(...lines);
    } else {
      await archive.restore(archived);
      archived = [];
    }
  };

  it('equal a count over the tables after any sequence of changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 10 }), async (steps) => {
        for (const s of steps) {
          await apply(s);
          await expectExact(s.kind);
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);

  it('are counted again when a table is truncated', async () => {
    await apply({ kind: 'bulk', department: 0, rows: 5 });
    await apply({ kind: 'read-all', viewer: 0 });
    await withOwnerDatabase(database, (owner) => sql`TRUNCATE notification_receipts`.execute(owner));
    await expectExact('truncating receipts');
    await withOwnerDatabase(database, (owner) => sql`TRUNCATE notifications`.execute(owner));
    await expectExact('truncating notifications');
    expect(await sql`SELECT 1 FROM unread_counters WHERE unread <> 0`.execute(db).then((result) => result.rows)).toEqual([]);
  });
});
