/**
 * `node --import tsx bench/src/transport-probe.ts [seconds] [rate:perTransaction ...]`: the
 * RabbitMQ transport's structural figures, which a busy machine does not drown: per event, the
 * consumer's transactions, the AMQP messages, the relay's outbox reads, and the CPU of this
 * process (writers, relay, consumer), of the broker and of PostgreSQL (every process of its own
 * embedded cluster), from /proc. Latencies are printed too, for what they are worth on the machine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createDatabase, createHttpServer } from '@archipelago/platform';
import { startEmbeddedPostgres } from '@archipelago/platform/embedded';
import { appendEvents, createConsumerTablesV1, createOutboxRelayV1, createOutboxRetentionV1, createOutboxTableV1, registerEventFeed, startConsumer, type EventEnvelope, type NewEvent, type Subscription } from '@archipelago/platform/events';
import { rabbitmqTransport, startRelay } from '@archipelago/platform/events/rabbitmq';
import { sharedConnection } from '../../packages/platform/src/events/rabbitmq/connection.ts';
import { freePort } from '@archipelago/platform/net';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { startRabbitMq } from '@archipelago/platform/testing/rabbitmq';
import { LatencyRecorder } from './lib/latency.ts';

const WRITERS = 8;
const seconds = Number(process.argv[2] ?? 5);
const steps = (process.argv.slice(3).length > 0 ? process.argv.slice(3) : ['1000:1', '5000:20']).map((text) => {
  const [rate, perTransaction] = text.split(':').map(Number);
  return { rate: rate!, perTransaction: perTransaction ?? 1 };
});

const TICKS = 100; // USER_HZ
function descendants(root: number): Map<number, string> {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      parents.set(Number(entry), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const found = new Map<number, string>();
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent === pid && !found.has(child)) {
        found.set(child, names.get(child)!);
        walk(child);
      }
    }
  };
  walk(root);
  return found;
}
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return 0;
  }
}
/** CPU ms by group: this node process, the broker (beam), PostgreSQL (postgres processes). */
function cpuSnapshot(postmaster: number): { node: number; broker: number; postgres: number } {
  const mine = descendants(process.pid);
  let broker = 0;
  for (const [pid, name] of mine) if (name.startsWith('beam')) broker += cpuMsOf(pid);
  let postgres = cpuMsOf(postmaster);
  for (const [pid] of descendants(postmaster)) postgres += cpuMsOf(pid);
  const usage = process.cpuUsage();
  return { node: (usage.user + usage.system) / 1000, broker, postgres };
}

async function main() {
  const dir = await mkdtemp(path.join(tmpdir(), 'transport-probe-'));
  const cluster = await startEmbeddedPostgres({ dataDir: path.join(dir, 'postgres'), port: await freePort(), durability: 'durable' });
  const broker = await startRabbitMq();
  const admin = createDatabase<unknown>(`postgres://postgres:${encodeURIComponent(String(cluster.connection('postgres').password))}@127.0.0.1:${cluster.port}/postgres`, { max: 1 });
  await sql`CREATE DATABASE producer`.execute(admin);
  await sql`CREATE DATABASE consumer`.execute(admin);
  const { rows } = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'`.execute(admin);
  const postmaster = Number(readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  await admin.destroy();
  const url = (database: string) => cluster.url('postgres', String(cluster.connection(database).password), database);
  let producerReads = 0;
  const committedAt = new Map<string, number>();
  let toRelay = new LatencyRecorder();
  let toConsumer = new LatencyRecorder();
  let consumerTransaction = new LatencyRecorder();
  const reads = new WeakSet<object>();
  const producerDb = createDatabase<unknown>(url('producer'), { max: WRITERS + 2 }).withPlugin({
    transformQuery: ({ node, queryId }) => {
      if (node.kind === 'RawNode' && node.sqlFragments.join('').includes('FROM outbox') && node.sqlFragments.join('').includes('settled')) {
        producerReads++;
        reads.add(queryId);
      }
      return node;
    },
    transformResult: async ({ result, queryId }) => {
      if (reads.has(queryId)) {
        const now = performance.now();
        for (const row of result.rows as { id: string; settled: boolean }[]) {
          const at = committedAt.get(row.id);
          if (row.settled) toRelay.record(at === undefined ? 0 : Math.max(0, now - at));
        }
      }
      return result;
    },
  });
  const consumerDb = createDatabase<unknown>(url('consumer'), { max: 4 });
  await createOutboxTableV1(producerDb);
  await createOutboxRetentionV1(producerDb);
  await createOutboxRelayV1(producerDb);
  await createConsumerTablesV1(consumerDb);
  await sql`CREATE TABLE bench_copy (code text PRIMARY KEY, version bigint NOT NULL)`.execute(consumerDb);
  const app = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  let feedUrl = '';
  const transport = rabbitmqTransport({ url: broker.url, urlOf: () => feedUrl, credentials: testCredentials('core') });
  await registerEventFeed(app, { source: 'masterdata', schema: 'public', db: producerDb, listenUrl: url('producer') });
  // The transport's relay, started here to read its stats (messages: one per publish).
  const relay = startRelay({ producer: { source: 'masterdata', schema: 'public', db: producerDb, listenUrl: url('producer') }, connection: sharedConnection(broker.url) });
  const relayPublished = () => (relay.stats as { messages?: number }).messages ?? relay.stats.published;
  feedUrl = await app.listen({ host: '127.0.0.1', port: 0 });

  let recorder = new LatencyRecorder();
  const receivedAt = new Map<string, number>();
  // Applied before the writer saw its commit acknowledged (a busy machine): not waited for, not timed.
  const appliedEarly = new Set<string>();
  let applied = 0;
  let transactions = 0;
  const inner = transport.subscribe({ source: 'masterdata', group: 'probe.copy' });
  const subscription: Subscription = {
    ...inner,
    receive: async (after, receive) => {
      const events = await inner.receive(after, receive);
      const now = performance.now();
      for (const event of events) receivedAt.set(event.id, now);
      return events;
    },
    acknowledge: async (events) => {
      const now = performance.now();
      for (const event of events) {
        const at = committedAt.get(event.id);
        const received = receivedAt.get(event.id);
        if (at === undefined) appliedEarly.add(event.id);
        if (at !== undefined) {
          recorder.record(now - at);
          if (received !== undefined) {
            toConsumer.record(Math.max(0, received - at));
            consumerTransaction.record(now - received);
          }
        }
        committedAt.delete(event.id);
        receivedAt.delete(event.id);
      }
      applied += events.length;
      await inner.acknowledge(events);
    },
    close: () => inner.close(),
  };
  const consumer = startConsumer<unknown>({
    name: 'probe.copy',
    subscription,
    db: consumerDb,
    handle: async (trx, events: readonly EventEnvelope[]) => {
      transactions++;
      await sql`INSERT INTO bench_copy (code, version)
        SELECT code, version FROM unnest(${events.map((e) => e.aggregate.id)}::text[], ${events.map((e) => e.aggregate.version)}::bigint[]) AS e(code, version)
        ON CONFLICT (code) DO UPDATE SET version = GREATEST(bench_copy.version, excluded.version)`.execute(trx);
    },
    batchSize: 500,
    onError: (error) => console.error(`consumer: ${String(error)}`),
  });

  let version = 0;
  const write = async (count: number) => {
    version++;
    const events: NewEvent[] = Array.from({ length: count }, (_, i) => ({ type: 'label.updated', aggregateType: 'label', aggregateId: `K${(version * count + i) % 1000}`, aggregateVersion: version, payload: { version } }));
    const ids = await producerDb.transaction().execute((trx) => appendEvents(trx, events));
    const at = performance.now();
    for (const id of ids) if (!appliedEarly.delete(id)) committedAt.set(id, at);
  };
  const run = async (rate: number, perTransaction: number, forSeconds: number, report: boolean) => {
    recorder = new LatencyRecorder();
    toRelay = new LatencyRecorder();
    toConsumer = new LatencyRecorder();
    consumerTransaction = new LatencyRecorder();
    const before = { applied, transactions, reads: producerReads, cpu: cpuSnapshot(postmaster), published: relayPublished() };
    let issued = 0;
    let inFlight = 0;
    const began = performance.now();
    const sends: Promise<void>[] = [];
    while (performance.now() - began < forSeconds * 1000) {
      const due = Math.floor(((performance.now() - began) / 1000) * rate);
      while (issued < due && inFlight < WRITERS) {
        issued += perTransaction;
        inFlight++;
        sends.push(write(perTransaction).finally(() => inFlight--));
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(sends);
    const elapsed = (performance.now() - began) / 1000;
    const drainStarted = performance.now();
    while (committedAt.size > 0 && performance.now() - drainStarted < 10_000) await new Promise((resolve) => setTimeout(resolve, 5));
    const drainMs = performance.now() - drainStarted;
    const cpu = cpuSnapshot(postmaster);
    const events = applied - before.applied;
    const latency = recorder.summary();
    if (!report) return;
    const hop = (recorded: LatencyRecorder) => {
      const summary = recorded.summary();
      return `${summary.p50Ms.toFixed(1)}/${summary.p99Ms.toFixed(1)}`;
    };
    const per = (value: number) => (events > 0 ? value / events : 0);
    console.log(
      `${rate}/s (${perTransaction} per tx), ${forSeconds} s: committed ${Math.round(issued / elapsed)}/s, applied ${events} events, drained in ${Math.round(drainMs)} ms; ` +
        `p50/p99 ms: end to end ${latency.p50Ms.toFixed(1)}/${latency.p99Ms.toFixed(1)}, commit → relay read ${hop(toRelay)}, → handed to the consumer ${hop(toConsumer)}, its transaction ${hop(consumerTransaction)}\n` +
        `  per event: consumer transactions ${per(transactions - before.transactions).toFixed(3)}, relay outbox reads ${per(producerReads - before.reads).toFixed(3)}, AMQP messages ${per(relayPublished() - before.published).toFixed(3)}; ` +
        `CPU µs: node ${Math.round(per(cpu.node - before.cpu.node) * 1000)}, broker ${Math.round(per(cpu.broker - before.cpu.broker) * 1000)}, postgres ${Math.round(per(cpu.postgres - before.cpu.postgres) * 1000)}`,
    );
  };
  try {
    await run(200, 1, 2, false);
    for (const step of steps) await run(step.rate, step.perTransaction, seconds, true);
  } finally {
    await consumer.stop();
    await relay.stop();
    await app.close();
    await producerDb.destroy();
    await consumerDb.destroy();
    await broker.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
