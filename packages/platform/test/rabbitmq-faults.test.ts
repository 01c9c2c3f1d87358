import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '../src/databases.ts';
import { appendEvents, formatPosition, outboxHead, registerEventFeed, startConsumer, type Consumer, type NewEvent } from '../src/events/index.ts';
import { sharedConnection } from '../src/events/rabbitmq/connection.ts';
import { EVENTS_EXCHANGE, rabbitmqTransport, relayedThrough, startRelay, type BrokerSubscription, type Relay, type RelayStats } from '../src/events/rabbitmq/index.ts';
import { createHttpServer } from '../src/http.ts';
import { conformanceHandler, createConformanceTables } from '../src/testing/conformance-consumer.ts';
import { testCredentials } from '../src/testing/credentials.ts';
import { useTestDatabase } from '../src/testing/index.ts';
import { rabbitmqInstalled, startRabbitMq } from '../src/testing/rabbitmq.ts';

// In CI (`.ci/run` installs rabbitmq-server) a missing broker fails the file; elsewhere it is skipped.
describe.skipIf(!rabbitmqInstalled && !process.env.CI)('RabbitMQ transport under faults', async () => {
  const broker = await startRabbitMq();
  const producerDb = await useTestDatabase('masterdata');
  const consumerDb = await useTestDatabase('core');
  await withOwnerDatabase(consumerDb, createConformanceTables);
  // The producer's feed serves only the catch-up; its relay runs on its own, so a test can stop either.
  const feed = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  await registerEventFeed(feed, { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl });
  const feedUrl = await feed.listen({ host: '127.0.0.1', port: 0 });
  const errors: string[] = [];
  const transport = rabbitmqTransport({ url: broker.url, urlOf: () => feedUrl, credentials: testCredentials('core'), onError: (error) => errors.push(`transport: ${String(error)}`) });
  const producer = { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl };
  const relay = (retryMs = 100): Relay => startRelay({ producer, connection: sharedConnection(broker.url), retryMs, onError: (error) => errors.push(`relay: ${String(error)}`) });
  const running: { stop(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await feed.close();
    await broker.stop();
  });

  const consume = (name: string): Consumer & { subscription: BrokerSubscription } => {
    const subscription = transport.subscribe({ source: 'masterdata', group: name });
    const consumer = startConsumer<unknown>({
      name,
      subscription,
      db: consumerDb.db,
      handle: conformanceHandler(name),
      batchSize: 50,
      backoffMs: () => 50,
      waitMs: 1_000,
      onError: (error) => errors.push(`${name}: ${String(error)}`),
    });
    running.push(consumer);
    return Object.assign(consumer, { subscription });
  };
  // Made-up event types: no service declares them, so appending checks no payload schema.
  const items = (prefix: string, count: number): NewEvent[] =>
    Array.from({ length: count }, (_, i) => ({ type: 'item.created', aggregateType: 'item', aggregateId: `${prefix}${i}`, aggregateVersion: 1, payload: { code: `${prefix}${i}`, label: `${prefix}${i}` } }));
  const publish = (events: NewEvent[]) => producerDb.db.transaction().execute((trx) => appendEvents(trx, events));
  const applied = async (name: string) =>
    (await sql<{ total: number; distinct: number }>`SELECT count(*)::int AS total, count(DISTINCT event_id)::int AS distinct FROM conformance_applied WHERE consumer = ${name}`.execute(consumerDb.db)).rows[0]!;
  const published = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox`.execute(producerDb.db)).rows[0]!.n;
  const until = async (condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000) => {
    const started = Date.now();
    while (!(await condition())) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; errors: ${[...new Set(errors)].join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const mark = async () => {
    const position = await relayedThrough(producerDb.db, 'rabbitmq');
    return position && formatPosition(position);
  };
  const head = async () => formatPosition((await outboxHead(producerDb.db))!);

  it('keeps delivering through the broker once caught up, with the producer\'s feed unreachable', async () => {
    const leader = relay();
    running.push(leader);
    const consumer = consume('live');
    await publish(items('LIVE', 5));
    await until(() => consumer.stats.processed === 5 && consumer.subscription.live, 'the first events');
    feed.server.close(); // no new connections: only the broker can bring what follows
    feed.server.closeAllConnections();
    await publish(items('AFTER-FEED', 30));
    await until(() => consumer.stats.processed === 35, 'events through the broker', 20_000);
    expect(await applied('live')).toEqual({ total: 35, distinct: 35 });
    await new Promise<void>((resolve) => feed.server.listen(Number(new URL(feedUrl).port), '127.0.0.1', resolve));
    await consumer.stop();
    await leader.stop();
  }, 120_000);

  it('loses nothing and applies nothing twice when the broker restarts mid-stream', async () => {
    const leader = relay();
    running.push(leader);
    const consumer = consume('through-restart');
    await until(() => consumer.subscription.live, 'the consumer to be live');
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing || i < 20; i++) {
        await publish(items(`R${i}-`, 20));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await until(async () => (await applied('through-restart')).total >= 100, 'events before the restart');
    await broker.restart();
    const atRestart = (await applied('through-restart')).total;
    await until(async () => (await applied('through-restart')).total >= atRestart + 200, 'events after the restart');
    writing = false;
    await writer;
    const total = await published();
    await until(async () => (await applied('through-restart')).total >= total && (await mark()) === (await head()), 'every event, and the mark at the head');
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything applied twice would show now
    expect(await applied('through-restart')).toEqual({ total, distinct: total });
    await consumer.stop();
    await leader.stop();
  }, 120_000);

  it('hands the relay to another instance when the leader is killed, losing and repeating nothing', async () => {
    const consumer = consume('after-takeover');
    await until(() => consumer.subscription.live, 'the consumer to be live');
    // Two relays in their own processes, each reporting its stats; whichever leads is killed.
    type Child = { process: ChildProcess; stats: RelayStats | undefined; exited: Promise<unknown> };
    const spawnRelay = (): Child => {
      const child = fork(fileURLToPath(new URL('../src/testing/relay-process.ts', import.meta.url)), {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, DATABASE_URL: producerDb.appUrl, RABBITMQ_URL: broker.url, SOURCE: 'masterdata' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const entry: Child = { process: child, stats: undefined, exited: new Promise((resolve) => child.once('exit', resolve)) };
      child.on('message', (stats) => (entry.stats = stats as RelayStats));
      return entry;
    };
    const children = [spawnRelay(), spawnRelay()];
    try {
      await publish(items('LEADER-A', 50));
      await until(async () => (await mark()) === (await head()) && children.every((c) => c.stats), 'a relay to lead, and both to report');
      await publish(items('LEADER-A-MORE', 50));
      await until(async () => (await mark()) === (await head()), 'the first leader to relay more');
      const leaders = children.filter((c) => c.stats?.leader);
      expect(leaders).toHaveLength(1); // the lock admits one
      const [leader] = leaders as [Child];
      const survivor = children.find((c) => c !== leader)!;
      const publishedBefore = survivor.stats!.published;
      leader.process.kill('SIGKILL');
      await leader.exited;
      await publish(items('LEADER-B', 50));
      await until(() => survivor.stats?.leader === true, 'the survivor to take over');
      const total = await published();
      await until(async () => (await applied('after-takeover')).total >= total && (await mark()) === (await head()), 'every event, through the new leader');
      await new Promise((resolve) => setTimeout(resolve, 300)); // anything applied twice would show now
      expect(await applied('after-takeover')).toEqual({ total, distinct: total });
      await until(() => survivor.stats!.published - publishedBefore >= 50, 'the survivor to report what it relayed', 5_000);
    } finally {
      for (const child of children) child.process.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
    }
    await consumer.stop();
  }, 120_000);

  it('marks nothing relayed that the broker did not confirm, and carries on once it does', async () => {
    const leader = relay();
    running.push(leader);
    const consumer = consume('unconfirmed');
    await publish(items('BEFORE-REFUSAL', 5));
    await until(async () => consumer.subscription.live && (await mark()) === (await head()), 'a relay at the head');
    const marked = await mark();
    // A full queue that refuses publishes: the broker nacks every message routed to it.
    const admin = await amqplib.connect(broker.url);
    const channel = await admin.createChannel();
    await channel.assertQueue('refusing', { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    await channel.bindQueue('refusing', EVENTS_EXCHANGE, 'masterdata.#');
    try {
      const refusedBefore = leader.stats.unconfirmed;
      await publish(items('REFUSED', 10));
      await until(() => leader.stats.unconfirmed > refusedBefore + 1, 'refusals');
      expect(await mark()).toBe(marked);
      expect(await mark()).not.toBe(await head());
    } finally {
      await channel.deleteQueue('refusing');
      await admin.close();
    }
    await until(async () => (await mark()) === (await head()), 'the mark at the head once the broker confirms');
    const total = await published();
    await until(async () => (await applied('unconfirmed')).total >= total, 'every event');
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything applied twice would show now
    expect(await applied('unconfirmed')).toEqual({ total, distinct: total }); // the refused ones were republished: their copies are dropped
    await consumer.stop();
    await leader.stop();
  }, 60_000);
});
