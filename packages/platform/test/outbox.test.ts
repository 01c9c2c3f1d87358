import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '../src/databases.ts';
import type { AppError } from '../src/errors.ts';
import { appendEvents, checkingEventPayloads, createOutboxRetentionV1, createOutboxTableV1, formatPosition, outboxHead, parsePosition, readOutbox, type NewEvent } from '../src/events/index.ts';
import { useTestDatabase } from '../src/testing/index.ts';

const event = (id: string, version = 1): NewEvent => ({
  type: 'thing.created',
  aggregateType: 'thing',
  aggregateId: id,
  aggregateVersion: version,
  payload: { code: id },
  metadata: { userId: 'u1', correlationId: `c-${id}` },
});

// A transaction of the same database may hold the feed back for a moment (that is the point of
// the horizon), so expectations of delivered events poll.
async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  let actual = await read();
  while (JSON.stringify(actual) !== JSON.stringify(expected) && Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    actual = await read();
  }
  expect(actual).toEqual(expected);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('the transactional outbox', async () => {
  const database = await useTestDatabase('notification');
  await withOwnerDatabase(database, createOutboxTableV1);
  await withOwnerDatabase(database, createOutboxRetentionV1);
  const db = database.db;
  const codes = async (after?: string) => (await readOutbox(db, 'masterdata', { after: after ? parsePosition(after) : undefined, limit: 100 })).map((e) => e.aggregate.id);

  it('delivers what a committed transaction wrote, as a full envelope, and nothing of a rolled-back one', async () => {
    await db.transaction().execute((trx) => appendEvents(trx, [event('A'), event('B')]));
    await db
      .transaction()
      .execute(async (trx) => {
        await appendEvents(trx, [event('ROLLED-BACK')]);
        throw new Error('the change failed');
      })
      .catch(() => undefined);
    await eventually(() => codes(), ['A', 'B']);
    const events = await readOutbox(db, 'masterdata', { limit: 10 });
    expect(events[0]).toMatchObject({
      type: 'thing.created',
      source: 'masterdata',
      aggregate: { type: 'thing', id: 'A', version: 1 },
      payload: { code: 'A' },
      metadata: { userId: 'u1', correlationId: 'c-A' },
    });
    expect(events[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await codes(events[0]!.position)).toEqual(['B']);
    expect(await codes(events[1]!.position)).toEqual([]);
  });

  it('never skips a transaction that started first but commits last', async () => {
    const [last] = await readOutbox(db, 'masterdata', { limit: 100 }).then((e) => e.slice(-1));
    const earlyMayCommit = deferred();
    const earlyHasWritten = deferred();
    // The early transaction takes its id first, then waits while a later one commits.
    const early = db.transaction().execute(async (trx) => {
      await appendEvents(trx, [event('EARLY')]);
      earlyHasWritten.resolve();
      await earlyMayCommit.promise;
    });
    await earlyHasWritten.promise;
    await db.transaction().execute((trx) => appendEvents(trx, [event('LATE')]));

    // LATE is committed, but EARLY might still commit before it in feed order: hold LATE back.
    expect(await codes(last!.position)).toEqual([]);
    earlyMayCommit.resolve();
    await early;
    await eventually(() => codes(last!.position), ['EARLY', 'LATE']);
  });

  it('is held back by any running transaction, even one that writes nothing to the outbox', async () => {
    const all = await readOutbox(db, 'masterdata', { limit: 100 });
    const release = deferred();
    const started = deferred();
    const idle = db.transaction().execute(async (trx) => {
      await sql`SELECT pg_current_xact_id()`.execute(trx); // takes a transaction id
      started.resolve();
      await release.promise;
    });
    await started.promise;
    await db.transaction().execute((trx) => appendEvents(trx, [event('BLOCKED')]));
    expect(await codes(all.at(-1)!.position)).toEqual([]);
    release.resolve();
    await idle;
    await eventually(() => codes(all.at(-1)!.position), ['BLOCKED']);
  });

  it("is not held back by a running transaction of another database, which cannot write this outbox", async () => {
    const other = await useTestDatabase('core');
    const all = await readOutbox(db, 'masterdata', { limit: 100 });
    const holder = new pg.Client({ connectionString: other.appUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()'); // an older transaction id, of another database, still running
      await db.transaction().execute((trx) => appendEvents(trx, [event('ELSEWHERE')]));
      await eventually(() => codes(all.at(-1)!.position), ['ELSEWHERE']);
      const [elsewhere] = await readOutbox(db, 'masterdata', { after: all.at(-1) && parsePosition(all.at(-1)!.position), limit: 1 });
      expect(formatPosition((await outboxHead(db))!)).toBe(elsewhere!.position);
    } finally {
      await holder.end();
    }
  });

  it('rejects a malformed position naming the field', () => {
    expect(() => parsePosition("1-1' OR 1=1")).toThrow(/is not an event feed position/);
    const error = (() => {
      try {
        parsePosition('abc', 'cursor');
      } catch (e) {
        return e as AppError;
      }
    })();
    expect(error?.status).toBe(400);
    expect(error?.fields.map((f) => f.field)).toEqual(['cursor']);
  });
});

describe('the outbox feed order', async () => {
  const database = await useTestDatabase('notification');
  await withOwnerDatabase(database, createOutboxTableV1);

  it('sorts transaction ids as numbers, not as text', async () => {
    // Explicit old transaction ids: '10' sorts before '9' as text.
    for (const txId of ['9', '10', '100']) {
      await sql`INSERT INTO outbox (tx_id, id, type, aggregate_type, aggregate_id, aggregate_version, payload)
                VALUES (${txId}::xid8, gen_random_uuid(), 'label.created', 'label', ${txId}, 1, '{}')`.execute(database.db);
    }
    await eventually(async () => (await readOutbox(database.db, 'masterdata', { limit: 10 })).map((e) => e.aggregate.id), ['9', '10', '100']);
    const events = await readOutbox(database.db, 'masterdata', { limit: 10 });
    expect((await readOutbox(database.db, 'masterdata', { after: parsePosition(events[0]!.position), limit: 10 })).map((e) => e.aggregate.id)).toEqual(['10', '100']);
  });
});

describe('payload checks under test', async () => {
  const database = await useTestDatabase('notification');
  await withOwnerDatabase(database, createOutboxTableV1);
  const order = { id: '0190a7a4-7d1e-7c3f-8b5e-1f2a3b4c5d6e', order_code: 'ORD-2026-000001', item_name: 'Gauze', quantity: 2, status: 'PENDING', department_code: 'LAB', created_by: null, version: 1 };
  const append = (payload: unknown) =>
    database.db.transaction().execute((trx) => appendEvents(trx, [{ type: 'order.created', aggregateType: 'order', aggregateId: order.id, aggregateVersion: 1, payload }]));
  const stored = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE type = 'order.created'`.execute(database.db)).rows[0]!.n;

  it("refuses a payload that does not match its type's declared schema, and writes nothing", async () => {
    await expect(append({ ...order, order_code: undefined, quantity: 'two' })).rejects.toThrow(
      'The payload of order.created (order 0190a7a4-7d1e-7c3f-8b5e-1f2a3b4c5d6e) does not match its declared schema (registry/src/events.ts): / must have required properties order_code; /quantity must be integer',
    );
    expect(await stored()).toBe(0);
    await append(order);
    expect(await stored()).toBe(1);
  });

  it('checks under test or with the flag, and never when the flag says 0', () => {
    expect(checkingEventPayloads({ NODE_ENV: 'test' })).toBe(true);
    expect(checkingEventPayloads({ NODE_ENV: 'production' })).toBe(false);
    expect(checkingEventPayloads({ ARCHIPELAGO_CHECK_EVENT_PAYLOADS: '1' })).toBe(true);
    expect(checkingEventPayloads({ NODE_ENV: 'test', ARCHIPELAGO_CHECK_EVENT_PAYLOADS: '0' })).toBe(false);
  });
});
