import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { followFeed as followEvents, recordedEvents } from '@archipelago/platform/testing/events';
import { coreTestApp } from './core-app.ts';

interface Order {
  id: string;
  order_code: string;
  status: string;
  version: number;
  completed_at: string | null;
  cancelled_at: string | null;
  [key: string]: unknown;
}
interface FeedEvent {
  type: string;
  aggregate: { type: string; id: string; version: number };
  payload: Order & { previous_status?: string };
}

describe('core orders', async () => {
  const { app, database, db } = await coreTestApp();
  const recorded = () => recordedEvents<FeedEvent>(database.db);
  const followFeed = (match: (event: FeedEvent & { position: string }) => boolean) => followEvents(app, match);

  const create = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/orders', payload });
  const move = (id: string, status: string) => app.inject({ method: 'POST', url: `/api/v1/orders/${id}/status`, payload: { status } });

  it('lists the seeded orders with filters', async () => {
    const all = (await app.inject({ url: '/api/v1/orders' })).json<{ items: Order[]; total: number }>();
    expect(all.total).toBe(2);
    const pending = (await app.inject({ url: '/api/v1/orders?status=PENDING' })).json<{ items: Order[] }>();
    expect(pending.items.map((o) => o.order_code)).toEqual(['ORD-2025-000002']);
    const byCode = (await app.inject({ url: '/api/v1/orders?order_code=ORD-2025-000001' })).json<{ items: Order[] }>();
    expect(byCode.items[0]).toMatchObject({ item_name: 'HbA1c blood test', status: 'COMPLETED', department_code: 'LAB' });
    expect((await app.inject({ url: '/api/v1/orders?status=DONE' })).statusCode).toBe(400);
  });

  it('creates an order with the next code of its year, and records order.created', async () => {
    const response = await create({ item_name: 'Lipid panel', department_code: 'LAB', ordered_at: '2025-03-01T10:00:00Z' });
    expect(response.statusCode).toBe(201);
    const order = response.json<Order>();
    expect(order).toMatchObject({ order_code: 'ORD-2025-000003', status: 'PENDING', quantity: 1, version: 1, completed_at: null, ordered_at: '2025-03-01T10:00:00.000Z' });
    expect((await app.inject({ url: `/api/v1/orders/${order.id}` })).json()).toEqual(order);
    expect((await app.inject({ url: '/api/v1/orders/ORD-2025-000003' })).json()).toEqual(order);
    expect((await app.inject({ url: '/api/v1/orders/ORD-2025-999999' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/v1/orders/none' })).statusCode).toBe(404);
    const now = await create({ item_name: 'Chest X-ray', department_code: 'RADIO' });
    expect(now.json<Order>().order_code).toMatch(new RegExp(`^ORD-${new Date().getUTCFullYear()}-000001$`));

    const event = (await recorded()).find((e) => e.aggregate.id === order.id)!;
    expect(event).toMatchObject({ type: 'order.created', aggregate: { type: 'order', version: 1 }, payload: order });
    expect(await followFeed((e) => e.aggregate.id === order.id)).toMatchObject({ type: 'order.created', source: 'core', payload: order });
  });

  it('hands out unique, consecutive codes to concurrent creates', async () => {
    const responses = await Promise.all(Array.from({ length: 25 }, (_, i) => create({ item_name: `Item ${i}`, department_code: 'PHARM', ordered_at: '2024-06-01T00:00:00Z' })));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(25).fill(201));
    const codes = responses.map((r) => r.json<Order>().order_code).sort();
    expect(codes).toEqual(Array.from({ length: 25 }, (_, i) => `ORD-2024-${String(i + 1).padStart(6, '0')}`));
  });

  it('moves an order only along legal transitions, recording order.status-changed', async () => {
    const order = (await create({ item_name: 'MRI brain', department_code: 'RADIO' })).json<Order>();
    const processing = await move(order.id, 'PROCESSING');
    expect(processing.json()).toMatchObject({ status: 'PROCESSING', version: 2, completed_at: null });
    const completed = await move(order.id, 'COMPLETED');
    expect(completed.statusCode).toBe(200);
    expect(completed.json<Order>()).toMatchObject({ status: 'COMPLETED', version: 3 });
    expect(completed.json<Order>().completed_at).not.toBeNull();

    const illegal = await move(order.id, 'PROCESSING');
    expect(illegal.statusCode).toBe(409);
    expect(illegal.json()).toMatchObject({ code: 'CONFLICT', detail: `Order ${order.order_code} cannot go from COMPLETED to PROCESSING`, errors: [{ field: 'body.status', value: 'PROCESSING' }] });
    expect((await move(order.id, 'CANCELLED')).statusCode).toBe(409);

    const events = (await recorded()).filter((e) => e.aggregate.id === order.id);
    expect(events.map((e) => [e.type, e.aggregate.version, e.payload.status, e.payload.previous_status])).toEqual([
      ['order.created', 1, 'PENDING', undefined],
      ['order.status-changed', 2, 'PROCESSING', 'PENDING'],
      ['order.status-changed', 3, 'COMPLETED', 'PROCESSING'],
    ]);
  });

  it('cancels from PENDING or PROCESSING but never skips PROCESSING or repeats a status', async () => {
    const a = (await create({ item_name: 'A', department_code: 'LAB' })).json<Order>();
    expect((await move(a.id, 'COMPLETED')).json()).toMatchObject({ status: 409, detail: expect.stringContaining('from PENDING to COMPLETED') as string });
    expect((await move(a.id, 'PENDING')).statusCode).toBe(409);
    const cancelled = (await move(a.id, 'CANCELLED')).json<Order>();
    expect(cancelled).toMatchObject({ status: 'CANCELLED', completed_at: null });
    expect(cancelled.cancelled_at).not.toBeNull();
    const b = (await create({ item_name: 'B', department_code: 'LAB' })).json<Order>();
    await move(b.id, 'PROCESSING');
    expect((await move(b.id, 'CANCELLED')).json()).toMatchObject({ status: 'CANCELLED', version: 3 });
  });

  it('lets exactly one of two concurrent changes of the same order win', async () => {
    const order = (await create({ item_name: 'Race', department_code: 'LAB' })).json<Order>();
    const [first, second] = await Promise.all([move(order.id, 'PROCESSING'), move(order.id, 'PROCESSING')]);
    expect([first.statusCode, second.statusCode].sort()).toEqual([200, 409]);
    expect((await app.inject({ url: `/api/v1/orders/${order.id}` })).json()).toMatchObject({ status: 'PROCESSING', version: 2 });
  });

  it('rejects bad input: unknown department 422, unknown resource 422, unknown order 404, bad body 400', async () => {
    const before = (await recorded()).length;
    const department = await create({ item_name: 'X', department_code: 'NOPE' });
    expect(department.statusCode).toBe(422);
    expect(department.json()).toMatchObject({ errors: [{ field: 'body.department_code', value: 'NOPE' }] });
    const inactive = await create({ item_name: 'X', department_code: 'OLD' });
    expect(inactive.json()).toMatchObject({ status: 422, errors: [{ field: 'body.department_code', value: 'OLD' }] });
    const resource = await create({ item_name: 'X', department_code: 'LAB', resource_id: '00000000-0000-4000-8000-00000000ffff' });
    expect(resource.json()).toMatchObject({ status: 422, errors: [{ field: 'body.resource_id' }] });
    expect((await move('00000000-0000-4000-8000-00000000ffff', 'PROCESSING')).statusCode).toBe(404);
    const bad = await create({ item_name: '', department_code: 'lab', quantity: 0 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ errors: { field: string }[] }>().errors.map((e) => e.field).sort()).toEqual(['body.department_code', 'body.item_name', 'body.quantity']);
    expect((await move('not-a-uuid', 'PROCESSING')).statusCode).toBe(400);
    expect((await recorded()).length).toBe(before);
  });

  it('writes no order and uses no number when its event cannot be recorded', async () => {
    const counter = async () => (await sql<{ last_value: number }>`SELECT last_value FROM order_code_counters WHERE year = 2023`.execute(db)).rows[0]?.last_value;
    await withOwnerDatabase(database, (owner) => sql`REVOKE INSERT ON outbox FROM core_app`.execute(owner));
    try {
      expect((await create({ item_name: 'Half', department_code: 'LAB', ordered_at: '2023-01-01T00:00:00Z' })).statusCode).toBe(500);
    } finally {
      await withOwnerDatabase(database, (owner) => sql`GRANT INSERT ON outbox TO core_app`.execute(owner));
    }
    expect(await counter()).toBeUndefined();
    expect((await app.inject({ url: '/api/v1/orders?limit=500' })).json<{ items: Order[] }>().items.some((o) => o.item_name === 'Half')).toBe(false);
    expect((await create({ item_name: 'Whole', department_code: 'LAB', ordered_at: '2023-01-01T00:00:00Z' })).json()).toMatchObject({ order_code: 'ORD-2023-000001' });
  });
});
