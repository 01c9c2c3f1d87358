import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '@archipelago/platform/testing';
import { PRIORITIES, type NotificationDatabase, type Priority } from '../src/database.ts';
import { badgeCounter, memoryBadgeCache, type BadgeCache } from '../src/notifications/badges.ts';
import { notificationRepository, type NotificationView, type Viewer } from '../src/notifications/notification.repository.ts';
import { freshUnreadCounts } from './notification-app.ts';

const VIEWERS: Viewer[] = [
  { userId: '00000000-0000-4000-8000-00000000000a', departmentCode: 'LAB' },
  { userId: '00000000-0000-4000-8000-00000000000b', departmentCode: 'LAB' },
  { userId: '00000000-0000-4000-8000-00000000000c', departmentCode: 'RADIO' },
];

type Step =
  | { kind: 'insert'; to: { user: number } | { department: string }; priority: Priority }
  | { kind: 'count'; viewers: number[] }
  | { kind: 'deliver'; viewers: number[] }
  | { kind: 'read'; viewer: number; pick: number };

const viewers = fc.uniqueArray(fc.nat(VIEWERS.length - 1), { minLength: 1, maxLength: VIEWERS.length });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), to: fc.oneof(fc.record({ user: fc.nat(VIEWERS.length - 1) }), fc.record({ department: fc.constantFrom('LAB', 'RADIO') })), priority: fc.constantFrom(...PRIORITIES) }),
  fc.record({ kind: fc.constant('count' as const), viewers }),
  fc.record({ kind: fc.constant('deliver' as const), viewers }),
  fc.record({ kind: fc.constant('read' as const), viewer: fc.nat(VIEWERS.length - 1), pick: fc.nat() }),
);

// Live delivery's counts (badgeCounter.countsAfter): what the sockets' viewers are pushed with a
// new notification, answered from a cached count known up to a position where there is one.
describe('badge counts after a delivery', async () => {
  const database = await useTestDatabase('notification');
  const db = database.db as Kysely<NotificationDatabase>;
  const repository = notificationRepository(db);
  let queries = 0;
  const counting = { ...repository, unreadCountsAt: (list: readonly Viewer[]) => (queries++, repository.unreadCountsAt(list)) };
  const insert = (rows: { user?: number; department?: string; priority: Priority }[]) =>
    db.transaction().execute((trx) =>
      repository.insert(trx, rows.map((row) => ({
        department_code: row.user === undefined ? row.department! : VIEWERS[row.user]!.departmentCode, user_id: row.user === undefined ? null : VIEWERS[row.user]!.userId,
        notification_type: 'T', title: 't', message: 'm', priority: row.priority, created_by: 'test',
      }))));
  const fresh = async (list: readonly Viewer[]) => new Map(await Promise.all(list.map(async (viewer) => [viewer.userId, await freshUnreadCounts(db, viewer)] as const)));

  it("adds a delivered broadcast to its members' cached counts without counting again, and counts again whoever it was not delivered to", async () => {
    const badges = badgeCounter(counting, memoryBadgeCache());
    await badges.countsOf(VIEWERS);
    const broadcast = await insert([{ department: 'LAB', priority: 'HIGH' }]);
    queries = 0;
    expect(await badges.countsAfter(VIEWERS.slice(0, 1), broadcast)).toEqual(await fresh(VIEWERS.slice(0, 1)));
    expect(queries).toBe(0);
    expect(await badges.countsOf(VIEWERS)).toEqual(await fresh(VIEWERS)); // b's cached count was dropped, not kept without the broadcast
    expect(queries).toBe(1);
    // A count read after a notification committed and before it is delivered holds it already: not added twice.
    const later = badgeCounter(counting, memoryBadgeCache());
    const next = await insert([{ department: 'LAB', priority: 'LOW' }, { user: 0, priority: 'NORMAL' }]);
    await later.countsOf(VIEWERS);
    const last = await insert([{ department: 'LAB', priority: 'CRITICAL' }]);
    queries = 0;
    expect(await later.countsAfter(VIEWERS, [...next, ...last])).toEqual(await fresh(VIEWERS));
    expect(queries).toBe(0);
  });

  // Random interleavings of inserts, counts read (cached) before or after the inserts are delivered,
  // deliveries in commit order to some of the viewers, and reads: every delivery's counts equal a
  // fresh count from the tables, with the in-process cache and with a cache that cannot add (Redis's).
  it.each([
    { cache: 'in-process', make: (): BadgeCache => memoryBadgeCache() },
    { cache: 'one that cannot add', make: (): BadgeCache => ({ ...memoryBadgeCache(), added: undefined }) },
  ])('answers exact counts after every delivery ($cache cache)', async ({ make }) => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const badges = badgeCounter(counting, make());
        const pending: NotificationView[] = [];
        const ids: string[] = [];
        for (const s of steps) {
          if (s.kind === 'insert') {
            const rows = await insert([{ ...s.to, priority: s.priority }]);
            pending.push(...rows);
            ids.push(...rows.map((row) => row.id));
          } else if (s.kind === 'count') {
            const list = s.viewers.map((i) => VIEWERS[i]!);
            const counts = await badges.countsOf(list);
            // Until a notification is delivered, a cached count may not have it yet (as with the event consumer's).
            if (pending.length === 0) expect(counts).toEqual(await fresh(list));
          } else if (s.kind === 'deliver') {
            const list = s.viewers.map((i) => VIEWERS[i]!);
            expect(await badges.countsAfter(list, pending.splice(0))).toEqual(await fresh(list));
          } else if (ids.length > 0) {
            const viewer = VIEWERS[s.viewer]!;
            const id = ids[s.pick % ids.length]!;
            if (await repository.findVisible(viewer, id)) {
              await db.transaction().execute((trx) => repository.mark(trx, viewer, id, ['read_at']));
              await badges.userChanged(viewer.userId);
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
