import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '../src/databases.ts';
import { appendEvents, createConsumerTablesV1, registerEventFeed, startConsumer, type Consumer, type EventEnvelope, type NewEvent } from '../src/events/index.ts';
import { createHttpServer } from '../src/http.ts';
import { useTestDatabase } from '../src/testing/index.ts';

// A real producer (masterdata's database, outbox, HTTP feed on loopback) and a real consumer
// (core's database) keeping a version-guarded copy of labels.
describe('the default transport: outbox feed and consumer runtime', async () => {
  const producerDb = await useTestDatabase('masterdata');
  const consumerDb = await useTestDatabase('core');
  // masterdata's migrations already created its outbox.
  await withOwnerDatabase(consumerDb, async (db) => {
    await createConsumerTablesV1(db);
    await sql`CREATE TABLE labels_copy (code text PRIMARY KEY, label text NOT NULL, version bigint NOT NULL)`.execute(db);
    await sql`CREATE TABLE applied_log (event_id uuid NOT NULL, consumer text NOT NULL)`.execute(db);
  });
  const producer = await createHttpServer({ service: 'masterdata', logger: false });
  await registerEventFeed(producer, { source: 'masterdata', schema: 'masterdata', db: producerDb.db, listenUrl: producerDb.appUrl });
  const feedUrl = await producer.listen({ host: '127.0.0.1', port: 0 });
  const consumers: Consumer[] = [];
  const errors: string[] = [];
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.stop()));
    await producer.close();
  });

  const labelEvent = (code: string, version: number, label = `${code} v${version}`): NewEvent => ({
    type: version === 1 ? 'label.created' : 'label.updated',
    aggregateType: 'label',
    aggregateId: code,
    aggregateVersion: version,
    payload: { code, label },
  });
  const publish = (events: NewEvent[]) => producerDb.db.transaction().execute((trx) => appendEvents(trx, events));

  // The lookup projection: upsert guarded by version, so a stale or replayed event changes nothing.
  const copyLabel = (name: string, fail?: (event: EventEnvelope) => boolean) => async (trx: Kysely<unknown>, event: EventEnvelope) => {
    if (fail?.(event)) throw new Error(`cannot apply ${event.aggregate.id}`);
    const payload = event.payload as { code: string; label: string };
    await sql`INSERT INTO applied_log (event_id, consumer) VALUES (${event.id}, ${name})`.execute(trx);
    await sql`INSERT INTO labels_copy (code, label, version) VALUES (${payload.code}, ${payload.label}, ${event.aggregate.version})
              ON CONFLICT (code) DO UPDATE SET label = excluded.label, version = excluded.version
              WHERE labels_copy.version < excluded.version`.execute(trx);
  };
  const consume = (name: string, fail?: (event: EventEnvelope) => boolean, maxAttempts = 3) => {
    const consumer = startConsumer({
      name, feedUrl, db: consumerDb.db, handle: copyLabel(name, fail), batchSize: 7, maxAttempts, backoffMs: () => 10, waitMs: 2_000,
      onError: (error, context) => errors.push(`${name} ${context.event?.aggregate.id ?? 'batch'}: ${String(error)}`),
    });
    consumers.push(consumer);
    return consumer;
  };
  const until = async (condition: () => Promise<boolean> | boolean, timeoutMs = 10_000) => {
    const started = Date.now();
    while (!(await condition())) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out; consumers: ${JSON.stringify(consumers.map((c) => c.stats))}; errors: ${errors.slice(-3).join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const copy = async () => (await sql<{ code: string; label: string; version: string }>`SELECT code, label, version::text FROM labels_copy ORDER BY code`.execute(consumerDb.db)).rows;
  const applied = async (name: string) =>
    (await sql<{ total: number; distinct: number }>`SELECT count(*)::int AS total, count(DISTINCT event_id)::int AS distinct FROM applied_log WHERE consumer = ${name}`.execute(consumerDb.db)).rows[0]!;

  it('applies every committed event once, including those published while it waits', async () => {
    const consumer = consume('first');
    for (let i = 0; i < 10; i++) await publish([labelEvent(`L${i}`, 1), labelEvent(`L${i}`, 2)]);
    await until(() => consumer.stats.processed === 20);
    await publish([labelEvent('LATE', 1)]); // arrives during a long poll: the LISTEN wake-up delivers it
    await until(() => consumer.stats.processed === 21);
    expect(await applied('first')).toEqual({ total: 21, distinct: 21 });
    expect((await copy()).find((r) => r.code === 'L3')).toEqual({ code: 'L3', label: 'L3 v2', version: '2' });
    await consumer.stop();
  });

  it('resumes after a restart from its stored position, losing and repeating nothing', async () => {
    const first = consume('restarting');
    await until(() => first.stats.processed === 21);
    await first.stop();
    await publish([labelEvent('AFTER-STOP', 1)]);
    const second = consume('restarting');
    await until(() => second.stats.processed === 1);
    expect(await applied('restarting')).toEqual({ total: 22, distinct: 22 });
    await second.stop();
  });

  it('rolls back a failed batch whole, retries, and dead-letters a poison event without stopping', async () => {
    let flaky = 2; // the first two attempts at L5 fail, then it succeeds
    const consumer = consume('picky', (event) => event.aggregate.id === 'POISON' || (event.aggregate.id === 'L5' && flaky-- > 0));
    await publish([labelEvent('POISON', 1), labelEvent('AFTER-POISON', 1)]);
    await until(() => consumer.stats.processed === 23 && consumer.stats.deadLettered === 1);
    expect(await applied('picky')).toEqual({ total: 23, distinct: 23 });
    const dead = await sql<{ type: string; attempts: number; error: string }>`SELECT type, attempts, error FROM dead_letters WHERE consumer = 'picky'`.execute(consumerDb.db);
    expect(dead.rows).toEqual([{ type: 'label.created', attempts: 3, error: 'cannot apply POISON' }]);
    expect((await copy()).map((r) => r.code)).toContain('AFTER-POISON');
    // Per-event attempts that failed after the batch did: L5 once more, POISON three times.
    expect(consumer.stats.failedAttempts).toBe(4);
    await consumer.stop();
  });

  it('survives a dead letter it cannot write, and carries on once it can', async () => {
    await withOwnerDatabase(consumerDb, (db) => sql`REVOKE INSERT ON dead_letters FROM core_app`.execute(db));
    const consumer = consume('stubborn', (event) => event.aggregate.id === 'POISON');
    try {
      await until(() => consumer.stats.processed === 22); // everything before POISON
      await until(() => errors.some((e) => e.startsWith('stubborn batch: error: permission denied for table dead_letters')));
      expect(consumer.stats.deadLettered).toBe(0);
    } finally {
      await withOwnerDatabase(consumerDb, (db) => sql`GRANT INSERT ON dead_letters TO core_app`.execute(db));
    }
    await until(() => consumer.stats.deadLettered === 1 && consumer.stats.processed === 23);
    await consumer.stop();
  });

  it('ends in the right state when events are replayed or arrive out of order', async () => {
    await publish([labelEvent('ORDER', 3, 'newest')]);
    await publish([labelEvent('ORDER', 2, 'older')]);
    const consumer = consume('replayer');
    await until(async () => (await applied('replayer')).distinct === 26);
    expect(await applied('replayer'), errors.join('\n')).toEqual({ total: 26, distinct: 26 });
    expect(consumer.stats.processed).toBe(26);
    expect((await copy()).find((r) => r.code === 'ORDER')).toEqual({ code: 'ORDER', label: 'newest', version: '3' });
    await consumer.stop();
  });

  it('answers a malformed position with a problem naming the field', async () => {
    const response = await producer.inject({ url: '/internal/v1/events?after=nonsense' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'after' }] });
  });
});
