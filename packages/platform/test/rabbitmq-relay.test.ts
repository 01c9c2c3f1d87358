import net from 'node:net';
import amqplib from 'amqplib';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { appendEvents, formatPosition, outboxHead, registerEventFeed, startConsumer, type NewEvent } from '../src/events/index.ts';
import { sharedConnection } from '../src/events/rabbitmq/connection.ts';
import { BATCH_LIMIT, EVENTS_EXCHANGE, groupQueue, PREFETCH, rabbitmqTransport, relayedThrough, startRelay, type RelayOptions } from '../src/events/rabbitmq/index.ts';
import { createHttpServer } from '../src/http.ts';
import { testCredentials } from '../src/testing/credentials.ts';
import { useTestDatabase } from '../src/testing/index.ts';
import { rabbitmqInstalled, startRabbitMq } from '../src/testing/rabbitmq.ts';

// What keeps the RabbitMQ path quick: no Nagle, its own connections, no lost or late wake-ups,
// few mark writes, batches that leave the broker room to deliver. In CI a missing broker fails the file.
describe.skipIf(!rabbitmqInstalled && !process.env.CI)('RabbitMQ relay and subscription pacing', async () => {
  const broker = await startRabbitMq();
  const producerDb = await useTestDatabase('masterdata');
  const consumerDb = await useTestDatabase('core');
  const feed = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  await registerEventFeed(feed, { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl });
  const feedUrl = await feed.listen({ host: '127.0.0.1', port: 0 });
  const transport = rabbitmqTransport({ url: broker.url, urlOf: () => feedUrl, credentials: testCredentials('core') });
  const producer = { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl };
  const relay = (options: Partial<RelayOptions> = {}) => startRelay({ producer, connection: sharedConnection(broker.url), retryMs: 100, ...options });
  afterAll(async () => {
    await feed.close();
    await broker.stop();
  });

  const items = (prefix: string, count: number): NewEvent[] =>
    Array.from({ length: count }, (_, i) => ({ type: 'item.created', aggregateType: 'item', aggregateId: `${prefix}${i}`, aggregateVersion: 1, payload: { code: `${prefix}${i}` } }));
  const publish = (events: NewEvent[]) => producerDb.db.transaction().execute((trx) => appendEvents(trx, events));
  const outboxCount = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox`.execute(producerDb.db)).rows[0]!.n;
  const mark = async () => {
    const position = await relayedThrough(producerDb.db, 'rabbitmq');
    return position && formatPosition(position);
  };
  const head = async () => formatPosition((await outboxHead(producerDb.db))!);
  const until = async (condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000) => {
    const started = Date.now();
    while (!(await condition())) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

  it('relays an event held back behind an older transaction that writes no event once that one ends, without waiting for its poll', async () => {
    const leader = relay({ idlePollMs: 3_600_000 });
    try {
      await publish(items('FIRST', 1));
      const total = await outboxCount();
      await until(() => leader.stats.confirmed === total, 'the relay to lead and relay the backlog');
      // A transaction with a transaction id in the producer's database that writes no event holds
      // the horizon: the next commit's NOTIFY finds nothing readable, and its end sends no NOTIFY.
      const holder = new pg.Client({ connectionString: producerDb.appUrl });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_current_xact_id()');
        await publish(items('HELD', 1));
        await settle(); // the relay has read (nothing) on the NOTIFY by now
        expect(leader.stats.confirmed).toBe(total);
        await holder.query('COMMIT');
      } finally {
        await holder.end();
      }
      await until(() => leader.stats.confirmed === total + 1, 'the held-back event, relayed once the horizon moved');
    } finally {
      await leader.stop();
    }
  });

  it('looks again less and less often while an older transaction holds events back, and relays them once it ends', async () => {
    let reads = 0;
    const counted = producerDb.db.withPlugin({
      transformQuery: ({ node }) => {
        if (node.kind === 'RawNode' && node.sqlFragments.join('').includes('FROM outbox')) reads++;
        return node;
      },
      transformResult: async ({ result }) => result,
    });
    const leader = startRelay({ producer: { ...producer, db: counted }, connection: sharedConnection(broker.url), retryMs: 100, idlePollMs: 3_600_000 });
    const holder = new pg.Client({ connectionString: producerDb.appUrl });
    try {
      await publish(items('BACKOFF', 1));
      // Counted by the relay itself: the outbox head is what the horizon lets be read, so another
      // test file's open transaction could make the mark look caught up before BACKOFF was relayed.
      await until(() => leader.stats.confirmed === 1, 'the relay to lead and relay the backlog');
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      const [before, confirmed] = [reads, leader.stats.confirmed];
      await publish(items('BACKOFF-HELD', 1));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Doubling from 2 ms up to 50 ms: some 25 looks in that second (a slower machine makes fewer),
      // where a fixed 5 ms poll with an existence check made hundreds of queries.
      expect(reads - before).toBeLessThan(40);
      expect(leader.stats.confirmed).toBe(confirmed);
      await holder.query('COMMIT');
      await until(() => leader.stats.confirmed === confirmed + 1, 'the held-back event, relayed once the horizon moved');
    } finally {
      await holder.end().catch(() => undefined);
      await leader.stop();
    }
  });

  it('writes its mark at most once per markEveryMs, and what is confirmed when it stops', async () => {
    const before = await mark();
    const leader = relay({ markEveryMs: 3_600_000 });
    await publish(items('MARK-A', 5));
    await until(async () => (await mark()) !== before, 'the first mark');
    const first = await mark();
    await publish(items('MARK-B', 5));
    await until(() => leader.stats.confirmed === 10, 'every event confirmed');
    await settle();
    expect(await mark()).toBe(first); // the next write is due in an hour
    expect(first).not.toBe(await head());
    await leader.stop();
    expect(await mark()).toBe(await head());
  });

  it('publishes and consumes on connections of their own (flow control on the publishing one does not hold up acks)', async () => {
    const subscription = transport.subscribe({ source: 'masterdata', group: 'connections' });
    const producerApp = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    await transport.publish({ ...producer, app: producerApp });
    const consumer = startConsumer<unknown>({ name: 'connections', subscription, db: consumerDb.db, handle: async () => undefined, waitMs: 1_000 });
    try {
      await until(() => subscription.live, 'the subscription to be live');
      await publish(items('CONNECTIONS', 1));
      await until(async () => (await mark()) === (await head()), 'the transport\'s relay to relay it');
      const names = broker.ctl('list_connections', 'client_properties').split('\n').filter((line) => line.includes(`pid ${process.pid}`));
      expect(names.some((line) => line.includes('archipelago relay'))).toBe(true);
      expect(names.some((line) => line.includes('archipelago subscriptions'))).toBe(true);
    } finally {
      await consumer.stop();
      await producerApp.close();
    }
  });

  it('takes the events of at most half its prefetch\'s messages per batch, so the broker delivers into the other half while it commits', async () => {
    const leader = relay();
    const subscription = transport.subscribe({ source: 'masterdata', group: 'batches' });
    const sizes: number[] = [];
    let open = () => undefined as void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let recording = false;
    const consumer = startConsumer<unknown>({
      name: 'batches',
      subscription,
      db: consumerDb.db,
      batchSize: 1_000,
      waitMs: 1_000,
      handle: async (_trx, events) => {
        if (!recording) return;
        sizes.push(events.length);
        await gate;
      },
    });
    try {
      await until(async () => subscription.live && consumer.stats.processed === (await outboxCount()), 'the consumer to be live and caught up');
      recording = true;
      await publish(items('GATE', 1));
      await until(() => sizes.length === 1, 'the first batch to wait at the gate');
      // Alternating types: each event a message of its own (a message holds a run of one type).
      await publish(items('MANY', PREFETCH + 100).map((event, i) => (i % 2 ? { ...event, type: 'item.updated' } : event)));
      const total = await outboxCount();
      await until(async () => (await mark()) === (await head()), 'every event relayed');
      await settle(); // the broker fills the prefetch meanwhile
      open();
      await until(() => consumer.stats.processed === total, 'every event applied');
      expect(Math.max(...sizes.slice(1))).toBeLessThanOrEqual(BATCH_LIMIT);
    } finally {
      open();
      await consumer.stop();
      await leader.stop();
    }
  });

  it('publishes a run of events of one type as one message, and a consumer with smaller batches applies it in parts, each event once, acknowledging it when whole', async () => {
    const admin = await amqplib.connect(broker.url);
    const channel = await admin.createChannel();
    await channel.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, EVENTS_EXCHANGE, 'masterdata.#');
    const leader = relay();
    const subscription = transport.subscribe({ source: 'masterdata', group: 'parts' });
    const applied: string[] = [];
    const consumer = startConsumer<unknown>({ name: 'parts', subscription, db: consumerDb.db, batchSize: 7, waitMs: 1_000, handle: async (_trx, events) => void applied.push(...events.map((e) => e.aggregate.id)) });
    try {
      await until(async () => subscription.live && consumer.stats.processed === (await outboxCount()), 'the consumer to be live and caught up');
      const [before, messagesBefore] = [applied.length, leader.stats.messages];
      await publish(items('RUN', 50));
      await publish([{ ...items('OTHER', 1)[0]!, type: 'item.updated' }]);
      await until(() => applied.length === before + 51, 'every event applied');
      expect(applied.slice(before)).toEqual([...items('RUN', 50), ...items('OTHER', 1)].map((event) => event.aggregateId));
      expect((await channel.checkQueue(queue)).messageCount).toBe(2); // what the broker stored
      expect(leader.stats.messages - messagesBefore).toBe(2);
      await settle();
      expect(applied.length).toBe(before + 51);
    } finally {
      await consumer.stop();
      await leader.stop();
      await admin.close();
    }
    // Every message was acknowledged once applied whole: none went back to the queue when the channel closed.
    const check = await amqplib.connect(broker.url);
    try {
      expect((await (await check.createChannel()).checkQueue(groupQueue('masterdata', 'parts'))).messageCount).toBe(0);
    } finally {
      await check.close();
    }
  });

  it('turns Nagle off on its connections (small publishes and acks are not held back)', async () => {
    const setNoDelay = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    const connection = sharedConnection(broker.url);
    try {
      await (await connection.acquire()).waitForConnect();
      expect(setNoDelay).toHaveBeenCalledWith(true);
      expect(setNoDelay).not.toHaveBeenCalledWith(false);
    } finally {
      setNoDelay.mockRestore();
      await connection.release();
    }
  });
});
