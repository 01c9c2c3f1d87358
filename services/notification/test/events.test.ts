import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { notificationTestApp, type OrderPayload } from './notification-app.ts';

const until = async <T>(probe: () => Promise<T | undefined>, what: string): Promise<T> => {
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
};

describe("notifications from core's order events", async () => {
  // Two instances on one database: both follow core's feed, in one group.
  const { identity, peers, as, count, db } = await notificationTestApp({ instances: 2 });
  const creator = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const colleague = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const [asCreator, asColleague] = [await as(creator), await as(colleague)];
  const order = (changes: Partial<OrderPayload> = {}): OrderPayload => ({
    id: randomUUID(), order_code: `ORD-2026-${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`, item_name: 'Lipid panel', quantity: 1,
    status: 'PENDING', department_code: 'LAB', created_by: creator.id, version: 1, ...changes,
  });
  const titlesOf = async (client: typeof asCreator, reference: string) => {
    const page = (await client.inject({ url: '/api/v1/notifications?limit=100' })).json<{ items: { title: string; reference_id: string; user_id: string | null; priority: string; reference_code: string | null }[] }>();
    return page.items.filter((n) => n.reference_id === reference);
  };
  const referencing = (id: string) => count(sql`reference_id = ${id}`);

  it('order.created → one department broadcast "New order ORD-…", made once across instances', async () => {
    const placed = order();
    await peers.publish('order.created', placed);
    await until(async () => ((await referencing(placed.id)) > 0 ? true : undefined), 'the broadcast');
    const seen = await titlesOf(asColleague, placed.id);
    expect(seen).toMatchObject([{ title: `New order ${placed.order_code}`, user_id: null, priority: 'NORMAL', reference_code: placed.order_code }]);
    // Once the consumers have both moved past the event, there is still one.
    const cursor = async () => (await sql<{ position: string }>`SELECT position FROM event_cursors WHERE consumer = 'notification.orders'`.execute(db)).rows[0]?.position;
    const after = await cursor();
    await peers.publish('order.created', order({ department_code: 'RADIO' }));
    await until(async () => ((await cursor()) !== after ? true : undefined), 'the next event applied');
    expect(await referencing(placed.id)).toBe(1);
  });

  it('COMPLETED → "Order ready" (HIGH) to the department and to the creator; CANCELLED → the creator only', async () => {
    const done = order({ status: 'COMPLETED', version: 3, previous_status: 'PROCESSING' });
    await peers.publish('order.status-changed', done);
    await until(async () => ((await referencing(done.id)) === 2 ? true : undefined), 'two notifications');
    const toCreator = await titlesOf(asCreator, done.id);
    expect(toCreator.map((n) => [n.title, n.priority, n.user_id]).sort()).toEqual([['Order ready', 'HIGH', creator.id], ['Order ready', 'HIGH', null]].sort());
    expect((await titlesOf(asColleague, done.id)).map((n) => n.user_id)).toEqual([null]);

    const cancelled = order({ status: 'CANCELLED', version: 2, previous_status: 'PENDING' });
    await peers.publish('order.status-changed', cancelled);
    await until(async () => ((await referencing(cancelled.id)) === 1 ? true : undefined), 'the cancellation');
    expect((await titlesOf(asCreator, cancelled.id)).map((n) => [n.title, n.user_id])).toEqual([['Order cancelled', creator.id]]);
    expect(await titlesOf(asColleague, cancelled.id)).toEqual([]);
  });

  it("makes no second notification when core's events are delivered again (the consumer's cursor moved back)", async () => {
    const cursor = async () => (await sql<{ position: string }>`SELECT position FROM event_cursors WHERE consumer = 'notification.orders'`.execute(db)).rows[0]!.position;
    const before = await cursor();
    const placed = order();
    const done = order({ status: 'COMPLETED', version: 3, previous_status: 'PROCESSING' });
    await peers.publish('order.created', placed);
    await peers.publish('order.status-changed', done);
    await until(async () => ((await referencing(done.id)) === 2 ? true : undefined), 'the first delivery');
    await until(async () => ((await cursor()) !== before ? true : undefined), 'the cursor past both');

    // An operator's replay: the cursor goes back, and the next event wakes the consumer, which
    // finds the cursor moved, reloads it and receives both events again before the new one.
    await sql`UPDATE event_cursors SET position = ${before} WHERE consumer = 'notification.orders'`.execute(db);
    const next = order();
    await peers.publish('order.created', next);
    await until(async () => ((await referencing(next.id)) === 1 ? true : undefined), 'the event after the replay');
    expect(await referencing(placed.id)).toBe(1);
    expect(await referencing(done.id)).toBe(2);
    expect((await titlesOf(asColleague, placed.id)).map((n) => n.title)).toEqual([`New order ${placed.order_code}`]);
  });

  it('keeps orders_lookup from the same events, so the feed shows the current code and status', async () => {
    const placed = order();
    await peers.publish('order.created', placed);
    await peers.publish('order.status-changed', { ...placed, status: 'PROCESSING', version: 2, previous_status: 'PENDING' });
    const status = await until(async () => {
      const [first] = (await asColleague.inject({ url: '/api/v1/notifications?limit=100' })).json<{ items: { reference_id: string; reference_status: string | null }[] }>().items.filter((n) => n.reference_id === placed.id);
      return first?.reference_status === 'PROCESSING' ? first.reference_status : undefined;
    }, 'the lookup');
    expect(status).toBe('PROCESSING');
  });
});
