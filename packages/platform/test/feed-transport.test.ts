import { RawNode, sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '../src/databases.ts';
import { appendEvents, feedTransport, OUTBOX_RETENTION_MS, outboxChannel, pruneOutbox, registerEventFeed, startConsumer, type Consumer } from '../src/events/index.ts';
import { conformanceHandler, createConformanceTables } from '../src/testing/conformance-consumer.ts';
import { createHttpServer } from '../src/http.ts';
import { describeTransportConformance } from '../src/testing/transport-conformance.ts';
import { asPrincipal, testCredentials } from '../src/testing/credentials.ts';
import { useTestDatabase } from '../src/testing/index.ts';

// The default transport (no server beyond PostgreSQL and the services) passes the suite.
describeTransportConformance({ key: 'feed', create: ({ urlOf, credentials }) => feedTransport({ urlOf, credentials }) });

describe('the event feed', async () => {
  const database = await useTestDatabase('masterdata');

  it('answers a malformed position with a problem naming the field', async () => {
    const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db: database.db });
    const response = await asPrincipal(producer, 'core').inject({ url: '/internal/v1/events?after=nonsense' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'after' }] });
    await producer.close();
  });

  it('answers a waiting reader once an older transaction that held its events back ends (no NOTIFY says so)', async () => {
    const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    // The poll is far longer than the wait: only a re-read of held-back events can answer in time.
    await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db: database.db, listenUrl: database.appUrl, pollMs: 60_000 });
    const reader = asPrincipal(producer, 'core');
    const head = (await reader.inject({ url: '/internal/v1/events/head' })).json<{ position: string | null }>().position;
    const holder = new pg.Client({ connectionString: database.appUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()'); // an older transaction id, still running
      await database.db.transaction().execute((trx) => appendEvents(trx, [{ type: 'thing.created', aggregateType: 'thing', aggregateId: 'HELD', aggregateVersion: 1, payload: { code: 'HELD', label: 'held' } }]));
      const waiting = reader.inject({ url: `/internal/v1/events?waitMs=30000${head ? `&after=${head}` : ''}` })
        .then((response) => response.json<{ events: { aggregate: { id: string } }[] }>().events.map((event) => event.aggregate.id));
      await new Promise((resolve) => setTimeout(resolve, 300)); // it has read once, and found the event held back
      await holder.query('COMMIT');
      // Without a re-read it would wait for the poll or its 30 s (the poll's wake-up is past the wait).
      const gaveUp = new Promise((resolve) => setTimeout(() => resolve('no answer 10 s after the holder ended'), 10_000));
      expect(await Promise.race([waiting, gaveUp])).toEqual(['HELD']);
    } finally {
      await holder.end();
      await producer.close();
    }
  });
  it('keeps a NOTIFY that arrives while its read is in flight, and answers with that commit at once', async () => {
    const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    // The feed's page reads stall once, in the result (the query already ran): meanwhile an event
    // commits and its NOTIFY arrives, so the read answers empty although a wake-up came.
    let stallOnce: (() => Promise<void>) | undefined;
    const db = stallingOnce(database.db, 'AS settled', () => {
      const stall = stallOnce;
      stallOnce = undefined;
      return stall?.();
    });
    // The poll is far longer than the wait: only the kept wake-up can answer with the event.
    await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db, listenUrl: database.appUrl, pollMs: 60_000 });
    const reader = asPrincipal(producer, 'core');
    const head = (await reader.inject({ url: '/internal/v1/events/head' })).json<{ position: string | null }>().position;
    const listener = new pg.Client({ connectionString: database.appUrl });
    await listener.connect();
    try {
      await listener.query(`LISTEN ${outboxChannel('masterdata')}`);
      stallOnce = async () => {
        const notified = new Promise((resolve) => listener.once('notification', resolve));
        await database.db.transaction().execute((trx) => appendEvents(trx, [{ type: 'thing.created', aggregateType: 'thing', aggregateId: 'RACED', aggregateVersion: 1, payload: { code: 'RACED', label: 'raced' } }]));
        await notified;
        await new Promise((resolve) => setTimeout(resolve, 200)); // the feed's own LISTEN connection has it too
      };
      const waiting = reader.inject({ url: `/internal/v1/events?waitMs=30000${head ? `&after=${head}` : ''}` })
        .then((response) => response.json<{ events: { aggregate: { id: string } }[] }>().events.map((event) => event.aggregate.id));
      // A lost wake-up would leave it waiting for the poll or its 30 s.
      const gaveUp = new Promise((resolve) => setTimeout(() => resolve('no answer 10 s after the commit'), 10_000));
      expect(await Promise.race([waiting, gaveUp])).toEqual(['RACED']);
      expect(stallOnce).toBeUndefined(); // the read did stall
    } finally {
      await listener.end();
      await producer.close();
    }
  });
});

describe('the event feed and a prune during a read', () => {
  it('answers 410, not a page with a gap, when events after the position are pruned between its checks and its read', async () => {
    const database = await useTestDatabase('masterdata');
    const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    let pruneOnce: (() => Promise<unknown>) | undefined;
    // The feed's first check of the prune mark stalls in its result (the query already ran): meanwhile the events are pruned.
    const db = stallingOnce(database.db, 'FROM outbox_pruned', async () => {
      const prune = pruneOnce;
      pruneOnce = undefined;
      await prune?.();
    });
    await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db, pollMs: 60_000 });
    const reader = asPrincipal(producer, 'core');
    try {
      for (const id of ['FIRST', 'SECOND']) {
        await database.db.transaction().execute((trx) => appendEvents(trx, [{ type: 'thing.created', aggregateType: 'thing', aggregateId: id, aggregateVersion: 1, payload: { code: id, label: id } }]));
      }
      const { events } = (await reader.inject({ url: '/internal/v1/events' })).json<{ events: { position: string }[] }>();
      expect(events).toHaveLength(2);
      pruneOnce = () => pruneOutbox(database.db, { olderThanMs: 0 });
      const response = await reader.inject({ url: `/internal/v1/events?after=${events[0]!.position}` });
      expect(pruneOnce).toBeUndefined(); // the prune ran inside the request
      // SECOND is gone: the consumer must hear so, not get an empty page and move on past it.
      expect(response.statusCode, response.body).toBe(410);
    } finally {
      await producer.close();
    }
  });
});

describe('outbox retention', async () => {
  const producerDb = await useTestDatabase('masterdata');
  const consumerDb = await useTestDatabase('core');
  await withOwnerDatabase(consumerDb, createConformanceTables);
  const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl });
  const url = await producer.listen({ host: '127.0.0.1', port: 0 });
  const transport = feedTransport({ urlOf: () => url, credentials: testCredentials('core') });
  const consumers: Consumer[] = [];
  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    await producer.close();
  });
  const publish = (codes: string[]) =>
    producerDb.db.transaction().execute((trx) => appendEvents(trx, codes.map((code) => ({ type: 'thing.created', aggregateType: 'thing', aggregateId: code, aggregateVersion: 1, payload: { code, label: code } }))));
  const applied = async (name: string) =>
    (await sql<{ aggregate: string }>`SELECT aggregate FROM conformance_applied WHERE consumer = ${name} ORDER BY seq`.execute(consumerDb.db)).rows.map((row) => row.aggregate);

  it('prunes old events, says 410 to a consumer that needed them, and lets one with a way to resynchronise go on', async () => {
    await publish(['OLD1', 'OLD2', 'OLD3']);
    await sql`UPDATE outbox SET occurred_at = now() - interval '8 days'`.execute(producerDb.db);
    expect(await pruneOutbox(producerDb.db, { olderThanMs: OUTBOX_RETENTION_MS })).toBe(3);
    expect(await pruneOutbox(producerDb.db, { olderThanMs: OUTBOX_RETENTION_MS })).toBe(0);
    await publish(['NEW1', 'NEW2']);

    const gone = await asPrincipal(producer, 'core').inject({ url: '/internal/v1/events' });
    expect(gone.statusCode).toBe(410);
    const { prunedThrough } = gone.json<{ prunedThrough: string }>();
    expect(gone.json()).toMatchObject({ code: 'GONE', errors: [{ field: 'after' }] });

    const gaps: string[] = [];
    const resynchronising = startConsumer<unknown>({
      name: 'resynchronising', subscription: transport.subscribe({ source: 'masterdata', group: 'resynchronising' }), db: consumerDb.db,
      handle: conformanceHandler('resynchronising'), waitMs: 500, backoffMs: () => 20,
      onGap: async (position) => void gaps.push(position),
    });
    const errors: string[] = [];
    const stuck = startConsumer<unknown>({
      name: 'stuck', subscription: transport.subscribe({ source: 'masterdata', group: 'stuck' }), db: consumerDb.db,
      handle: conformanceHandler('stuck'), waitMs: 500, backoffMs: () => 20, onError: (error) => errors.push(String(error)),
    });
    consumers.push(resynchronising, stuck);
    for (let i = 0; i < 200 && ((await applied('resynchronising')).length < 2 || errors.length === 0); i++) await new Promise((resolve) => setTimeout(resolve, 25));

    expect(gaps).toEqual([prunedThrough]);
    expect(await applied('resynchronising')).toEqual(['NEW1', 'NEW2']);
    expect(errors[0]).toContain(`events up to ${prunedThrough} were pruned`);
    expect(stuck.stats.processed).toBe(0);
  });
});

// The database, with every result of a raw query containing `text` held until `stall()` resolves (the query already ran).
function stallingOnce<DB>(db: Kysely<DB>, text: string, stall: () => Promise<unknown> | undefined): Kysely<DB> {
  const matching = new WeakSet<object>();
  return db.withPlugin({
    transformQuery: ({ node, queryId }) => {
      if (RawNode.is(node) && node.sqlFragments.join('').includes(text)) matching.add(queryId);
      return node;
    },
    transformResult: async ({ result, queryId }) => {
      if (matching.has(queryId)) await stall();
      return result;
    },
  });
}
