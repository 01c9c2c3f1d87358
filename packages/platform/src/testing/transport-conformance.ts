import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '../databases.ts';
import { startConsumer, type Consumer } from '../events/consumer.ts';
import type { EventEnvelope, NewEvent } from '../events/envelope.ts';
import { appendEvents } from '../events/outbox.ts';
import type { EventTransport } from '../events/transport.ts';
import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import { testCredentials } from './credentials.ts';
import { createHttpServer } from '../http.ts';
import { conformanceHandler, createConformanceTables } from './conformance-consumer.ts';
import { useTestDatabase } from './index.ts';

export interface TransportUnderTest {
  /** Key of the transport in `consumer-process.ts`, for the crash test's separate process. */
  readonly key: string;
  /** Builds the transport; `urlOf` gives a service's base URL once its server listens. */
  readonly create: (context: { urlOf: (service: string) => string; credentials: ServiceCredentials }) => EventTransport | Promise<EventTransport>;
}

/**
 * The suite every event transport must pass (docs/architecture.md#events-and-the-outbox): a real producer (masterdata's
 * database and outbox, an HTTP server on loopback) and real consumers (core's database), with
 * at-least-once delivery turned into exactly-once effects for a group, and every event reaching
 * every instance of a broadcast.
 *
 * @example
 * describeTransportConformance({ key: 'feed', create: ({ urlOf, credentials }) => feedTransport({ urlOf, credentials }) });
 */
export function describeTransportConformance(underTest: TransportUnderTest): void {
  describe(`event transport "${underTest.key}" conformance`, async () => {
    const producerDb = await useTestDatabase('masterdata');
    const consumerDb = await useTestDatabase('core');
    await withOwnerDatabase(consumerDb, createConformanceTables);
    const producer = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    let producerUrl = '';
    const urlOf = (service: string) => {
      if (service !== 'masterdata') throw new Error(`no service ${service} in this test`);
      return producerUrl;
    };
    // The consumers sign as core, which the registry lists as a consumer of masterdata's events.
    const transport = await underTest.create({ urlOf, credentials: testCredentials('core') });
    await transport.publish({ source: 'masterdata', schema: 'masterdata', db: producerDb.db, app: producer, listenUrl: producerDb.appUrl });
    producerUrl = await producer.listen({ host: '127.0.0.1', port: 0 });
    const consumers: Consumer[] = [];
    const errors: string[] = [];
    afterAll(async () => {
      await Promise.all(consumers.map((c) => c.stop()));
      await producer.close();
    });

    const labelEvent = (code: string, version: number, label = `${code} v${version}`): NewEvent => ({
      type: version === 1 ? 'item.created' : 'item.updated',
      aggregateType: 'item',
      aggregateId: code,
      aggregateVersion: version,
      payload: { code, label },
    });
    const publish = (events: NewEvent[]) => producerDb.db.transaction().execute((trx) => appendEvents(trx, events));
    const consume = (name: string, fail?: (event: EventEnvelope) => boolean, maxAttempts = 3, loseConnection?: (event: EventEnvelope) => boolean) => {
      const consumer = startConsumer<unknown>({
        name,
        subscription: transport.subscribe({ source: 'masterdata', group: name }),
        db: consumerDb.db,
        handle: conformanceHandler(name, { fail, loseConnection }),
        batchSize: 7,
        maxAttempts,
        backoffMs: () => 10,
        waitMs: 2_000,
        onError: (error, context) => errors.push(`${name} ${context.event?.aggregate.id ?? 'batch'}: ${String(error)}`),
      });
      consumers.push(consumer);
      return consumer;
    };
    const until = async (condition: () => Promise<boolean> | boolean, timeoutMs = 20_000) => {
      const started = Date.now();
      while (!(await condition())) {
        if (Date.now() - started > timeoutMs) throw new Error(`timed out; consumers: ${JSON.stringify(consumers.map((c) => c.stats))}; errors: ${errors.slice(-3).join(' | ')}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    // A broadcast subscriber that notes the aggregates it saw, in order; `fail` makes chosen events throw.
    const subscribe = (name: string, fail?: (event: EventEnvelope) => boolean) => {
      const seen: string[] = [];
      const consumer = startConsumer({
        mode: 'broadcast',
        name,
        subscription: transport.subscribe({ source: 'masterdata', group: name, mode: 'broadcast' }),
        handle: async (events) => {
          for (const event of events) {
            if (fail?.(event)) throw new Error(`cannot apply ${event.aggregate.id}`);
            seen.push(event.aggregate.id);
          }
        },
        batchSize: 7,
        maxAttempts: 3,
        backoffMs: () => 10,
        waitMs: 2_000,
        onError: (error, context) => errors.push(`${name} ${context.event?.aggregate.id ?? 'batch'}: ${String(error)}`),
      });
      consumers.push(consumer);
      return { consumer, seen };
    };
    // A broadcast starts at "now" once it first asks: publish pings until every subscriber has seen one.
    let pings = 0;
    const listening = async (...subscribers: { seen: string[] }[]) => {
      const started = Date.now();
      for (;;) {
        const ping = `PING-${pings++}`;
        await publish([labelEvent(ping, 1)]);
        const until = Date.now() + 200;
        while (Date.now() < until && !subscribers.every((s) => s.seen.includes(ping))) await new Promise((resolve) => setTimeout(resolve, 10));
        if (subscribers.every((s) => s.seen.includes(ping))) return;
        if (Date.now() - started > 20_000) throw new Error(`broadcast subscribers never started; errors: ${errors.slice(-3).join(' | ')}`);
      }
    };
    const copy = async () => (await sql<{ code: string; label: string; version: string }>`SELECT code, label, version::text FROM conformance_copy ORDER BY code`.execute(consumerDb.db)).rows;
    const applied = async (name: string) =>
      (await sql<{ total: number; distinct: number }>`SELECT count(*)::int AS total, count(DISTINCT event_id)::int AS distinct FROM conformance_applied WHERE consumer = ${name}`.execute(consumerDb.db)).rows[0]!;
    const published = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox`.execute(producerDb.db)).rows[0]!.n;

    it('applies every committed event once, including those published while it waits', async () => {
      const consumer = consume('first');
      for (let i = 0; i < 10; i++) await publish([labelEvent(`L${i}`, 1), labelEvent(`L${i}`, 2)]);
      await until(() => consumer.stats.processed === 20);
      await publish([labelEvent('LATE', 1)]); // arrives during a long poll
      await until(() => consumer.stats.processed === 21);
      expect(await applied('first')).toEqual({ total: 21, distinct: 21 });
      expect((await copy()).find((r) => r.code === 'L3')).toEqual({ code: 'L3', label: 'L3 v2', version: '2' });
      await consumer.stop();
    });

    it('delivers nothing of a rolled-back transaction', async () => {
      await producerDb.db.transaction().execute(async (trx) => {
        await appendEvents(trx, [labelEvent('ROLLED-BACK', 1)]);
        throw new Error('changed my mind');
      }).catch(() => undefined);
      await publish([labelEvent('MARKER', 1)]);
      const consumer = consume('rollback');
      await until(() => consumer.stats.processed === 22);
      const rolledBack = await sql`SELECT 1 FROM conformance_applied WHERE consumer = 'rollback' AND aggregate = 'ROLLED-BACK'`.execute(consumerDb.db);
      expect(rolledBack.rows).toEqual([]);
      await consumer.stop();
    });

    it('resumes after a restart from its stored position, losing and repeating nothing', async () => {
      const first = consume('restarting');
      await until(() => first.stats.processed === 22);
      await first.stop();
      await publish([labelEvent('AFTER-STOP', 1)]);
      const second = consume('restarting');
      await until(() => second.stats.processed === 1);
      expect(await applied('restarting')).toEqual({ total: 23, distinct: 23 });
      await second.stop();
    });

    it('applies each event once when two instances of one consumer run at the same time', async () => {
      for (let i = 0; i < 10; i++) await publish(Array.from({ length: 20 }, (_, j) => labelEvent(`T${i}-${j}`, 1)));
      const total = await published();
      const twins = [consume('twins'), consume('twins')];
      await until(async () => (await applied('twins')).distinct === total);
      await new Promise((resolve) => setTimeout(resolve, 200)); // a second application would show now
      expect(await applied('twins')).toEqual({ total, distinct: total });
      await Promise.all(twins.map((twin) => twin.stop()));
    });

    it('keeps per-aggregate order across interleaved concurrent transactions', async () => {
      const before = await published();
      // Eight writers, each owning its aggregates, commit in an order the database decides;
      // one long transaction starts first and commits last.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const slow = producerDb.db.transaction().execute(async (trx) => {
        await appendEvents(trx, [labelEvent('SLOW', 1)]);
        await held;
      });
      await Promise.all(Array.from({ length: 8 }, async (_, writer) => {
        for (let version = 1; version <= 15; version++) {
          await publish([labelEvent(`W${writer}-A`, version), labelEvent(`W${writer}-B`, version)]);
        }
      }));
      release();
      await slow;
      const consumer = consume('ordered');
      await until(async () => (await applied('ordered')).total === before + 241);
      const sequence = await sql<{ aggregate: string; versions: string[] }>`
        SELECT aggregate, array_agg(version::text ORDER BY seq) AS versions FROM conformance_applied
        WHERE consumer = 'ordered' AND aggregate LIKE 'W%' GROUP BY aggregate`.execute(consumerDb.db);
      expect(sequence.rows).toHaveLength(16);
      for (const row of sequence.rows) expect(row.versions).toEqual(Array.from({ length: 15 }, (_, i) => String(i + 1)));
      expect(await applied('ordered')).toEqual({ total: before + 241, distinct: before + 241 });
      await consumer.stop();
    });

    it('rolls back a failed batch whole, retries, and dead-letters a poison event without stopping; the dead letter replays', async () => {
      let flaky = 2; // the first two attempts at L5 fail, then it succeeds
      let poisoned = true;
      await publish([labelEvent('POISON', 1), labelEvent('AFTER-POISON', 1)]);
      const total = await published();
      const consumer = consume('picky', (event) => (poisoned && event.aggregate.id === 'POISON') || (event.aggregate.id === 'L5' && flaky-- > 0));
      await until(() => consumer.stats.processed === total - 1 && consumer.stats.deadLettered === 1);
      expect(await applied('picky')).toEqual({ total: total - 1, distinct: total - 1 });
      const dead = await sql<{ id: string; type: string; attempts: number; error: string }>`SELECT id, type, attempts, error FROM dead_letters WHERE consumer = 'picky'`.execute(consumerDb.db);
      expect(dead.rows.map(({ type, attempts, error }) => ({ type, attempts, error }))).toEqual([{ type: 'item.created', attempts: 3, error: 'cannot apply POISON' }]);
      expect((await copy()).map((r) => r.code)).toContain('AFTER-POISON');
      await expect(consumer.replay(dead.rows[0]!.id)).rejects.toThrow('cannot apply POISON');
      poisoned = false; // the bug is fixed: the replay applies it and removes the dead letter
      expect(await consumer.replay(dead.rows[0]!.id)).toBe(true);
      expect(await applied('picky')).toEqual({ total, distinct: total });
      expect((await sql`SELECT 1 FROM dead_letters WHERE consumer = 'picky'`.execute(consumerDb.db)).rows).toEqual([]);
      await consumer.stop();
    });

    it('does not dead-letter an event whose attempts failed only because the database connection was lost', async () => {
      let cuts = 5; // more than the 3 attempts after which a failing event is dead-lettered
      await publish([labelEvent('CUT', 1), labelEvent('AFTER-CUT', 1)]);
      const total = await published();
      const consumer = consume('patient', undefined, 3, (event) => event.aggregate.id === 'CUT' && cuts-- > 0);
      await until(() => consumer.stats.processed === total);
      expect(cuts).toBeLessThan(0);
      expect(consumer.stats.deadLettered).toBe(0);
      expect(await applied('patient')).toEqual({ total, distinct: total });
      await consumer.stop();
    });

    it('survives a dead letter it cannot write, and carries on once it can', async () => {
      const total = await published();
      await withOwnerDatabase(consumerDb, (db) => sql`REVOKE INSERT ON dead_letters FROM core_app`.execute(db));
      const consumer = consume('stubborn', (event) => event.aggregate.id === 'POISON');
      try {
        await until(() => errors.some((e) => e.startsWith('stubborn batch: error: permission denied for table dead_letters')));
        expect(consumer.stats.deadLettered).toBe(0);
      } finally {
        await withOwnerDatabase(consumerDb, (db) => sql`GRANT INSERT ON dead_letters TO core_app`.execute(db));
      }
      await until(() => consumer.stats.deadLettered === 1 && consumer.stats.processed === total - 1);
      await consumer.stop();
    });

    it('ends in the right state when events are replayed or arrive out of order', async () => {
      await publish([labelEvent('ORDER', 3, 'newest')]);
      await publish([labelEvent('ORDER', 2, 'older')]);
      const total = await published();
      const consumer = consume('replayer');
      await until(async () => (await applied('replayer')).distinct === total);
      expect(await applied('replayer'), errors.join('\n')).toEqual({ total, distinct: total });
      expect((await copy()).find((r) => r.code === 'ORDER')).toEqual({ code: 'ORDER', label: 'newest', version: '3' });
      await consumer.stop();
    });

    it('loses nothing and applies nothing twice when the consumer process is killed mid-batch', async () => {
      const events = Array.from({ length: 400 }, (_, i) => labelEvent(`K${i}`, 1));
      for (let i = 0; i < events.length; i += 40) await publish(events.slice(i, i + 40));
      const total = await published();
      const run = () => {
        const child = fork(fileURLToPath(new URL('./consumer-process.ts', import.meta.url)), {
          execArgv: ['--import', 'tsx'],
          env: { ...process.env, TRANSPORT: underTest.key, SOURCE_URLS: JSON.stringify({ masterdata: producerUrl }), DATABASE_URL: consumerDb.appUrl, CONSUMER: 'killed', DELAY_MS: '2' },
          stdio: 'inherit',
        });
        return child;
      };
      const first = run();
      await until(async () => (await applied('killed')).total >= 120, 60_000);
      first.kill('SIGKILL'); // mid-batch: batches of 50 take ~100 ms
      await new Promise((resolve) => first.once('exit', resolve));
      const atKill = (await applied('killed')).total;
      expect(atKill).toBeLessThan(total);
      const second = run();
      try {
        await until(async () => (await applied('killed')).total >= total, 60_000);
        await new Promise((resolve) => setTimeout(resolve, 300)); // anything applied twice would show now
        expect(await applied('killed')).toEqual({ total, distinct: total });
      } finally {
        second.kill('SIGKILL');
      }
    }, 150_000); // two consumer processes to start, and up to a minute each to catch up on a busy machine

    // Publishes an event that is in the past for any broadcast started next: the transport has
    // delivered it to one running already (a feed hands out nothing while an older transaction runs).
    const publishBefore = async (code: string) => {
      const witness = subscribe(`witness-${code}`);
      await listening(witness);
      await publish([labelEvent(code, 1)]);
      await until(() => witness.seen.includes(code));
      await witness.consumer.stop();
    };

    it('delivers every event to every instance of a broadcast, from when it started, and stores no cursor', async () => {
      await publishBefore('BEFORE-BROADCAST');
      const instances = [subscribe('fanout'), subscribe('fanout')];
      await listening(...instances);
      const codes = Array.from({ length: 40 }, (_, i) => `B${i}`);
      for (let i = 0; i < codes.length; i += 8) await publish(codes.slice(i, i + 8).map((code) => labelEvent(code, 1)));
      await until(() => instances.every(({ seen }) => seen.includes('B39')));
      for (const { seen } of instances) {
        expect(seen.filter((code) => !code.startsWith('PING-'))).toEqual(codes); // all of them, once, in order
        expect(seen).not.toContain('BEFORE-BROADCAST');
      }
      expect((await sql`SELECT 1 FROM event_cursors WHERE consumer = 'fanout'`.execute(consumerDb.db)).rows).toEqual([]);
      await Promise.all(instances.map(({ consumer }) => consumer.stop()));
    });

    it('starts a restarted broadcast instance at "now", and skips an event that keeps failing without stopping', async () => {
      const first = subscribe('restarted-broadcast');
      await listening(first);
      await first.consumer.stop();
      await publishBefore('WHILE-STOPPED');
      const second = subscribe('restarted-broadcast', (event) => event.aggregate.id === 'BAD-BROADCAST');
      await listening(second);
      await publish([labelEvent('BAD-BROADCAST', 1), labelEvent('AFTER-BAD', 1)]);
      await until(() => second.seen.includes('AFTER-BAD'));
      expect(second.seen).not.toContain('WHILE-STOPPED');
      expect(second.seen).not.toContain('BAD-BROADCAST');
      expect(second.consumer.stats).toMatchObject({ mode: 'broadcast', skipped: 1, deadLettered: 0, failedAttempts: 3 });
      expect((await sql`SELECT 1 FROM dead_letters WHERE consumer = 'restarted-broadcast'`.execute(consumerDb.db)).rows).toEqual([]);
      await second.consumer.stop();
    });
  });
}
