import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { notificationTestApp } from './notification-app.ts';

interface View {
  id: string;
  title: string;
  user_id: string | null;
  department_code: string | null;
  priority: string;
  read_at: string | null;
  seen_at: string | null;
  archived_at: string | null;
  actioned_at: string | null;
  created_at: string;
  cursor: string;
}
interface Page {
  items: View[];
  total: number;
  page: number | null;
  next_cursor: string | null;
}

describe('notifications API', async () => {
  const { identity, as, db } = await notificationTestApp();
  const admin = await as(identity.user({ roles: ['admin'], departmentCode: 'LAB' }));
  const aliceUser = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const bobUser = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const carolUser = identity.user({ roles: ['staff'], departmentCode: 'RADIO' });
  const [alice, bob, carol] = await Promise.all([as(aliceUser), as(bobUser), as(carolUser)]);
  const create = (payload: object) => admin.inject({ method: 'POST', url: '/api/v1/notifications', payload });
  const created = async (payload: object) => {
    const response = await create({ notification_type: 'NOTE', title: 'Hello', message: 'Text', ...payload });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<View>();
  };
  const list = async (client: typeof alice, query = '') => (await client.inject({ url: `/api/v1/notifications${query}` })).json<Page>();
  const unread = async (client: typeof alice) => (await client.inject({ url: '/api/v1/notifications/unread-count' })).json<{ total: number; HIGH: number }>();

  it('creates department and user notifications, checking department and user with their owners (422 naming the field)', async () => {
    const broadcast = await created({ department_code: 'LAB', priority: 'HIGH' });
    expect(broadcast).toMatchObject({ department_code: 'LAB', user_id: null, priority: 'HIGH', read_at: null });
    const own = await created({ user_id: aliceUser.id });
    expect(own.user_id).toBe(aliceUser.id);

    const noDepartment = await create({ notification_type: 'NOTE', title: 'x', message: 'y', department_code: 'NOPE' });
    expect(noDepartment.statusCode).toBe(422);
    expect(noDepartment.json()).toMatchObject({ errors: [{ field: 'body.department_code', value: 'NOPE' }] });
    const nobody = '00000000-0000-4000-8000-00000000dead';
    const noUser = await create({ notification_type: 'NOTE', title: 'x', message: 'y', user_id: nobody });
    expect(noUser.statusCode).toBe(422);
    expect(noUser.json()).toMatchObject({ errors: [{ field: 'body.user_id', value: nobody }] });
    expect((await create({ notification_type: 'NOTE', title: 'x', message: 'y' })).statusCode).toBe(400);
    // Creating needs notifications:write; staff only read.
    expect((await alice.inject({ method: 'POST', url: '/api/v1/notifications', payload: { notification_type: 'NOTE', title: 'x', message: 'y', user_id: aliceUser.id } })).statusCode).toBe(403);
  });

  it('creates one notification per listed user in one request, each seen by its user only, checked per recipient (422 naming the entry)', async () => {
    const bulk = (payload: object, headers: Record<string, string> = {}) => admin.inject({ method: 'POST', url: '/api/v1/notifications/bulk', payload: { notification_type: 'NOTE', title: 'To several', message: 'm', ...payload }, headers });
    const before = await Promise.all([unread(alice), unread(carol)]);
    const response = await bulk({ user_ids: [carolUser.id, aliceUser.id], priority: 'HIGH' }, { 'idempotency-key': 'bulk-once-1' });
    expect(response.statusCode, response.body).toBe(201);
    const { items } = response.json<{ items: View[] }>();
    expect(items.map((n) => [n.user_id, n.priority, n.department_code])).toEqual([[carolUser.id, 'HIGH', null], [aliceUser.id, 'HIGH', null]]);
    expect(new Set(items.map((n) => n.id)).size).toBe(2);
    expect((await list(alice)).items.map((n) => n.id)).toContain(items[1]!.id);
    expect((await list(alice)).items.map((n) => n.id)).not.toContain(items[0]!.id);
    expect((await alice.inject({ url: `/api/v1/notifications/${items[0]!.id}` })).statusCode).toBe(404);
    expect([(await unread(alice)).HIGH, (await unread(carol)).HIGH]).toEqual([before[0].HIGH + 1, before[1].HIGH + 1]);
    // A retry with the same key replays the answer: nobody gets a second one.
    const again = await bulk({ user_ids: [carolUser.id, aliceUser.id], priority: 'HIGH' }, { 'idempotency-key': 'bulk-once-1' });
    expect(again.json<{ items: View[] }>().items.map((n) => n.id)).toEqual(items.map((n) => n.id));
    expect((await unread(alice)).HIGH).toBe(before[0].HIGH + 1);

    // Made at the same time, creates share a transaction: each request still gets its own rows.
    const [one, several] = await Promise.all([created({ user_id: bobUser.id, title: 'Alone' }), bulk({ user_ids: [bobUser.id, carolUser.id], title: 'Together' })]);
    expect([one.title, one.user_id]).toEqual(['Alone', bobUser.id]);
    expect(several.json<{ items: View[] }>().items.map((n) => [n.title, n.user_id])).toEqual([['Together', bobUser.id], ['Together', carolUser.id]]);

    const nobody = '00000000-0000-4000-8000-00000000dead';
    const unknown = await bulk({ user_ids: [aliceUser.id, nobody] });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({ errors: [{ field: 'body.user_ids.1', value: nobody }] });
    expect((await list(alice)).items.filter((n) => n.title === 'To several')).toHaveLength(1);
    expect((await bulk({ user_ids: [aliceUser.id, aliceUser.id] })).statusCode).toBe(400);
    expect((await bulk({ user_ids: [] })).statusCode).toBe(400);
    expect((await alice.inject({ method: 'POST', url: '/api/v1/notifications/bulk', payload: { notification_type: 'NOTE', title: 'x', message: 'y', user_ids: [aliceUser.id] } })).statusCode).toBe(403);
  });

  it('creates for hundreds of users at once: the commit\'s announcement is split to fit PostgreSQL\'s NOTIFY limit', async () => {
    const many = Array.from({ length: 400 }, () => identity.user({ roles: ['staff'], departmentCode: 'LAB' }));
    const response = await admin.inject({ method: 'POST', url: '/api/v1/notifications/bulk', payload: { notification_type: 'NOTE', title: 'To very many', message: 'm', user_ids: many.map((u) => u.id) } });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json<{ items: View[] }>().items.map((n) => n.user_id)).toEqual(many.map((u) => u.id));
    const last = await as(many.at(-1)!);
    expect((await list(last)).items.map((n) => n.title)).toContain('To very many');
  });

  it("shows a user their own and their department's notifications; anything else is 404", async () => {
    const forCarol = await created({ user_id: carolUser.id, title: 'For Carol' });
    const radio = await created({ department_code: 'RADIO', title: 'Radiology only' });
    expect((await list(alice)).items.map((n) => n.title)).not.toContain('For Carol');
    expect((await list(alice)).items.map((n) => n.title)).not.toContain('Radiology only');
    expect((await list(carol)).items.map((n) => n.title)).toEqual(expect.arrayContaining(['For Carol', 'Radiology only']));
    for (const id of [forCarol.id, radio.id]) {
      expect((await alice.inject({ url: `/api/v1/notifications/${id}` })).statusCode).toBe(404);
      expect((await alice.inject({ method: 'POST', url: `/api/v1/notifications/${id}/read` })).statusCode).toBe(404);
    }
    expect((await bob.inject({ url: `/api/v1/notifications/${forCarol.id}` })).statusCode).toBe(404);
  });

  it("keeps a broadcast's state per user: read by one member, unread for the others", async () => {
    const broadcast = await created({ department_code: 'LAB', title: 'Per user', priority: 'HIGH' });
    const [aliceBefore, bobBefore] = [await unread(alice), await unread(bob)];
    const read = await alice.inject({ method: 'POST', url: `/api/v1/notifications/${broadcast.id}/read` });
    expect(read.statusCode).toBe(200);
    expect(read.json<View>().read_at).not.toBeNull();
    expect(await unread(alice)).toMatchObject({ total: aliceBefore.total - 1, HIGH: aliceBefore.HIGH - 1 });
    expect(await unread(bob)).toEqual(bobBefore);
    expect((await bob.inject({ url: `/api/v1/notifications/${broadcast.id}` })).json<View>().read_at).toBeNull();

    const seen = (await bob.inject({ method: 'POST', url: `/api/v1/notifications/${broadcast.id}/seen` })).json<View>();
    expect(seen).toMatchObject({ read_at: null });
    expect(seen.seen_at).not.toBeNull();
    const actioned = (await bob.inject({ method: 'POST', url: `/api/v1/notifications/${broadcast.id}/action` })).json<View>();
    expect(actioned.actioned_at).not.toBeNull();
    expect(actioned.read_at).not.toBeNull();
    const archived = (await alice.inject({ method: 'POST', url: `/api/v1/notifications/${broadcast.id}/archive` })).json<View>();
    expect(archived.archived_at).not.toBeNull();
    expect((await list(alice)).items.map((n) => n.id)).not.toContain(broadcast.id);
    expect((await list(alice, '?archived=true')).items.map((n) => n.id)).toEqual([broadcast.id]);
    expect((await list(bob)).items.map((n) => n.id)).toContain(broadcast.id);
  });

  it('reads all (of one type, or every one) and filters by unread, type and priority', async () => {
    await created({ user_id: bobUser.id, notification_type: 'ALERT', title: 'a1', priority: 'CRITICAL' });
    await created({ user_id: bobUser.id, notification_type: 'ALERT', title: 'a2' });
    expect((await list(bob, '?type=ALERT&unread=true')).total).toBe(2);
    expect((await list(bob, '?priority=CRITICAL')).items.map((n) => n.title)).toEqual(['a1']);
    const byType = await bob.inject({ method: 'POST', url: '/api/v1/notifications/read-all?type=ALERT' });
    expect(byType.json()).toEqual({ updated: 2 });
    expect((await list(bob, '?type=ALERT&unread=true')).total).toBe(0);
    expect((await unread(bob)).total).toBeGreaterThan(0);
    const all = await bob.inject({ method: 'POST', url: '/api/v1/notifications/read-all' });
    expect(all.statusCode, all.body).toBe(200);
    expect((await unread(bob)).total).toBe(0);
    expect((await list(alice, '?unread=true')).total).toBeGreaterThan(0); // Bob's reading is his alone
  });

  it('pages by cursor and by page number, disjoint and complete, newest first', async () => {
    const user = identity.user({ roles: ['staff'], departmentCode: 'PHARM' });
    const client = await as(user);
    const ids: string[] = [];
    for (let i = 0; i < 45; i++) ids.push((await created({ department_code: i % 2 ? 'PHARM' : undefined, user_id: i % 2 ? undefined : user.id, title: `n${i}` })).id);
    const newestFirst = [...ids].reverse();

    const byCursor: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(client, `?limit=20${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.total).toBe(45);
      byCursor.push(...page.items.map((n) => n.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(byCursor).toEqual(newestFirst);

    const pages = await Promise.all([1, 2, 3, 4].map((page) => list(client, `?limit=20&page=${page}`)));
    expect(pages.map((p) => p.items.length)).toEqual([20, 20, 5, 0]);
    expect(pages[1]!.page).toBe(2);
    expect(pages.flatMap((p) => p.items.map((n) => n.id))).toEqual(newestFirst);

    const from = pages[0]!.items[4]!.created_at;
    expect((await list(client, `?to=${encodeURIComponent(from)}&limit=100`)).items.map((n) => n.id)).toEqual(newestFirst.slice(5));

    const bad = await client.inject({ url: '/api/v1/notifications?cursor=bm9wZQ' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ field: 'querystring.cursor' }] });
    expect((await client.inject({ url: `/api/v1/notifications?cursor=${pages[0]!.items[0]!.cursor}&page=2` })).statusCode).toBe(400);
  });

  it('replays a retried create with the same Idempotency-Key instead of creating twice', async () => {
    const payload = { notification_type: 'NOTE', title: 'Once', message: 'm', user_id: aliceUser.id };
    const headers = { 'idempotency-key': 'notify-once-1' };
    const first = await admin.inject({ method: 'POST', url: '/api/v1/notifications', payload, headers });
    const again = await admin.inject({ method: 'POST', url: '/api/v1/notifications', payload, headers });
    expect([first.statusCode, again.statusCode]).toEqual([201, 201]);
    expect(again.json<View>().id).toBe(first.json<View>().id);
    expect((await list(alice)).items.filter((n) => n.title === 'Once')).toHaveLength(1);
  });

  // The count is taken again while the read is answered: the unread-count after it is a cache hit,
  // shown by a counter moved behind the service's back (no change of the service invalidates it).
  it('answers the unread-count after a read, an archive or a read-all from the cache, exact', async () => {
    const daveUser = identity.user({ roles: ['staff'], departmentCode: 'PHARM' });
    const dave = await as(daveUser);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await created({ user_id: daveUser.id, priority: 'LOW' })).id);
    const before = (await unread(dave)).total;
    const moveCounter = (by: number) => sql`UPDATE unread_counters SET unread = unread + ${by} WHERE user_id = ${daveUser.id} AND priority = 'LOW'`.execute(db);
    const changes = [
      { left: before - 1, change: () => dave.inject({ method: 'POST', url: `/api/v1/notifications/${ids[0]}/read` }) },
      { left: before - 2, change: () => dave.inject({ method: 'POST', url: `/api/v1/notifications/${ids[1]}/archive` }) },
      { left: 0, change: () => dave.inject({ method: 'POST', url: '/api/v1/notifications/read-all' }) },
    ];
    for (const { left, change } of changes) {
      expect((await change()).statusCode).toBe(200);
      await moveCounter(100);
      try {
        expect((await unread(dave)).total).toBe(left);
      } finally {
        await moveCounter(-100);
      }
    }
  });

  it('asks for a token and the read permission', async () => {
    const outsider = await as(identity.user({ roles: ['outsider'], departmentCode: 'LAB' }));
    expect((await outsider.inject({ url: '/api/v1/notifications' })).statusCode).toBe(403);
  });
});
