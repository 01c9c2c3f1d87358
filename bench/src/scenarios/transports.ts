import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import { createDatabase, createHttpServer } from '@archipelago/platform';
import {
  appendEvents,
  createConsumerTablesV1,
  createOutboxRelayV1,
  createOutboxRetentionV1,
  createOutboxTableV1,
  feedTransport,
  startConsumer,
  type EventEnvelope,
  type EventTransport,
  type NewEvent,
  type Subscription,
} from '@archipelago/platform/events';
import { rabbitmqTransport } from '@archipelago/platform/events/rabbitmq';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { rabbitmqInstalled, startRabbitMq, type TestRabbitMq } from '@archipelago/platform/testing/rabbitmq';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder, type LatencySummary } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';
import type { RunningSystem } from '../lib/system.ts';

const WRITERS = 8;
const KEYS = 1_000;

interface Step {
  readonly rate: number;
  readonly perTransaction: number;
  readonly seconds: number;
}

interface StepResult extends Step {
  readonly committedPerSecond: number;
  readonly appliedPerSecond: number;
  readonly drainMs: number;
  readonly latency: LatencySummary;
  /** The same path in two hops: producer commit → batch handed to the consumer, and → its commit. */
  readonly hops: { readonly toConsumer: LatencySummary; readonly consumerTransaction: LatencySummary };
  readonly sustained: boolean;
}

interface Variant {
  readonly name: 'feed' | 'rabbitmq';
  readonly steady: StepResult;
  readonly ramp: readonly StepResult[];
}

/** A scratch database on the system's cluster, as its superuser (dropped and made anew). */
async function scratchDatabase(system: RunningSystem, name: string): Promise<{ db: Kysely<unknown>; url: string }> {
  const password = (await readFile(path.join(system.dataDir, 'postgres/superuser-password'), 'utf8')).trim();
  const url = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${system.ports.postgres}/${database}`;
  const admin = createDatabase<unknown>(url('postgres'), { max: 1, applicationName: 'bench-transports' });
  try {
    await sql`DROP DATABASE IF EXISTS ${sql.id(name)} WITH (FORCE)`.execute(admin);
    await sql`CREATE DATABASE ${sql.id(name)}`.execute(admin);
  } finally {
    await admin.destroy();
  }
  return { db: createDatabase<unknown>(url(name), { max: WRITERS + 2, applicationName: 'bench-transports' }), url: url(name) };
}

/**
 * One transport end to end: a producer (outbox, feed server, and for RabbitMQ its relay) and a
 * group consumer applying each batch to a table in its own database, exactly as services do.
 * Latency runs from the producer's commit acknowledgement to the consumer's acknowledgement
 * (called after its transaction committed), both in this process.
 */
async function measure(name: Variant['name'], system: RunningSystem, broker: TestRabbitMq | undefined, context: ScenarioContext): Promise<Variant> {
  const producer = await scratchDatabase(system, `bench_${name}_producer`);
  const consumerDb = (await scratchDatabase(system, `bench_${name}_consumer`)).db;
  const producerDb = producer.db;
  await createOutboxTableV1(producerDb);
  await createOutboxRetentionV1(producerDb);
  await createOutboxRelayV1(producerDb);
  await createConsumerTablesV1(consumerDb);
  await sql`CREATE TABLE bench_copy (code text PRIMARY KEY, version bigint NOT NULL)`.execute(consumerDb);
  const app = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  let url = '';
  const options = { urlOf: () => url, credentials: testCredentials('core') };
  const transport: EventTransport = name === 'feed' ? feedTransport(options) : rabbitmqTransport({ ...options, url: broker!.url });
  await transport.publish({ source: 'masterdata', schema: 'public', db: producerDb, app, listenUrl: producer.url });
  url = await app.listen({ host: '127.0.0.1', port: 0 });

  const committedAt = new Map<string, number>();
  // Applied before the producer's commit acknowledgement reached its writer (a loaded machine
  // delays that continuation): counted from when the writer began its transaction, an upper bound.
  const appliedEarly = new Map<string, number>();
  let recorder: LatencyRecorder | undefined;
  let toConsumer: LatencyRecorder | undefined;
  let consumerTransaction: LatencyRecorder | undefined;
  const receivedAt = new Map<string, number>();
  let applied = 0;
  const inner = transport.subscribe({ source: 'masterdata', group: 'bench.copy' });
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
        receivedAt.delete(event.id);
        if (at !== undefined) {
          recorder?.record(now - at);
          if (received !== undefined && received >= at) {
            toConsumer?.record(received - at);
            consumerTransaction?.record(now - received);
          }
          committedAt.delete(event.id);
        } else appliedEarly.set(event.id, now);
      }
      applied += events.length;
      await inner.acknowledge(events);
    },
    close: () => inner.close(),
  };
  const consumer = startConsumer<unknown>({
    name: 'bench.copy',
    subscription,
    db: consumerDb,
    handle: async (trx, events: readonly EventEnvelope[]) => {
      await sql`INSERT INTO bench_copy (code, version)
        SELECT code, version FROM unnest(${events.map((e) => e.aggregate.id)}::text[], ${events.map((e) => e.aggregate.version)}::bigint[]) AS e(code, version)
        ON CONFLICT (code) DO UPDATE SET version = GREATEST(bench_copy.version, excluded.version)`.execute(trx);
    },
    batchSize: 500,
    onError: (error) => context.log(`${name} consumer: ${String(error)}`),
  });

  let version = 0;
  const write = async (count: number) => {
    version++;
    const events: NewEvent[] = Array.from({ length: count }, (_, i) => ({ type: 'label.updated', aggregateType: 'label', aggregateId: `K${(version * count + i) % KEYS}`, aggregateVersion: version, payload: { version } }));
    const began = performance.now();
    const ids = await producerDb.transaction().execute((trx) => appendEvents(trx, events));
    const at = performance.now();
    for (const id of ids) {
      const early = appliedEarly.get(id);
      if (early === undefined) committedAt.set(id, at);
      else {
        recorder?.record(early - began);
        appliedEarly.delete(id);
      }
    }
    return ids.length;
  };

  const runStep = async (step: Step): Promise<StepResult> => {
    recorder = new LatencyRecorder();
    toConsumer = new LatencyRecorder();
    consumerTransaction = new LatencyRecorder();
    const appliedBefore = applied;
    let committed = 0;
    let issued = 0;
    let inFlight = 0;
    const began = performance.now();
    const end = began + step.seconds * 1000;
    const sends: Promise<void>[] = [];
    while (performance.now() < end && !context.signal.aborted) {
      const due = Math.floor(((performance.now() - began) / 1000) * step.rate);
      while (issued < due && inFlight < WRITERS) {
        issued += step.perTransaction;
        inFlight++;
        sends.push(write(step.perTransaction).then((n) => void (committed += n)).finally(() => inFlight--));
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(sends);
    const elapsedS = (performance.now() - began) / 1000;
    const appliedInStep = applied - appliedBefore;
    const drainStarted = performance.now();
    while (committedAt.size > 0 && performance.now() - drainStarted < 10_000 && !context.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 5));
    const drainMs = committedAt.size === 0 ? performance.now() - drainStarted : Number.POSITIVE_INFINITY;
    committedAt.clear();
    appliedEarly.clear();
    const latency = recorder.summary();
    const hops = { toConsumer: toConsumer.summary(), consumerTransaction: consumerTransaction.summary() };
    for (const hop of [recorder, toConsumer, consumerTransaction]) hop.destroy();
    recorder = toConsumer = consumerTransaction = undefined;
    receivedAt.clear();
    const committedPerSecond = committed / elapsedS;
    const result: StepResult = {
      ...step,
      committedPerSecond,
      appliedPerSecond: appliedInStep / elapsedS,
      drainMs,
      latency,
      hops,
      // The same rule as the propagation scenario: the target rate committed, 97 % applied within
      // the step, and the rest drained within half a second.
      sustained: committedPerSecond >= step.rate * 0.95 && appliedInStep >= committed * 0.97 && drainMs <= 500,
    };
    context.log(`${name} ${step.rate}/s (${step.perTransaction} per tx): committed ${Math.round(committedPerSecond)}/s, applied ${Math.round(result.appliedPerSecond)}/s, p50 ${latency.p50Ms.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms (to the consumer p50 ${hops.toConsumer.p50Ms.toFixed(1)} / p99 ${hops.toConsumer.p99Ms.toFixed(1)}, its transaction p50 ${hops.consumerTransaction.p50Ms.toFixed(1)} / p99 ${hops.consumerTransaction.p99Ms.toFixed(1)}), drained in ${Number.isFinite(drainMs) ? Math.round(drainMs) : '>10000'} ms${result.sustained ? '' : ' — not sustained'}`);
    return result;
  };

  try {
    await runStep({ rate: 200, perTransaction: 1, seconds: 2 }); // warm-up
    const steady = await runStep({ rate: 1_000, perTransaction: 1, seconds: context.quick ? 5 : 20 });
    const ramp: StepResult[] = [];
    for (const rate of [2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 16_000, 20_000]) {
      const step = await runStep({ rate, perTransaction: 20, seconds: context.quick ? 3 : 8 });
      ramp.push(step);
      if (!step.sustained) break;
    }
    return { name, steady, ramp };
  } finally {
    await consumer.stop();
    await app.close();
    await producerDb.destroy();
    await consumerDb.destroy();
  }
}

function figures(variants: readonly Variant[]): Figure[] {
  return variants.flatMap((variant): Figure[] => {
    const best = variant.ramp.filter((step) => step.sustained).at(-1);
    const title = `${variant.name} transport, producer commit → consumer commit`;
    return [
      { key: `transports.${variant.name}.1000.p50`, label: `${title}, 1,000 events/s: p50`, value: round(variant.steady.latency.p50Ms, 2), unit: 'ms' },
      { key: `transports.${variant.name}.1000.p99`, label: `${title}, 1,000 events/s: p99`, value: round(variant.steady.latency.p99Ms, 2), unit: 'ms', goal: { comparison: '<=', value: 25 } },
      {
        key: `transports.${variant.name}.sustained`,
        label: `${variant.name} transport: highest sustained rate`,
        value: best ? Math.round(best.committedPerSecond) : 0,
        unit: 'events/s',
        goal: { comparison: '>=', value: 5_000 },
        note: best ? `20 events per producer transaction; p99 ${round(best.latency.p99Ms, 1)} ms` : 'no step of the ramp was sustained',
      },
    ];
  });
}

/** Event transports (the feed and RabbitMQ) side by side in one run, on the same PostgreSQL. */
export const transports: Scenario = {
  name: 'transports',
  title: 'Event transports compared: feed and RabbitMQ',
  built: true,
  timeLimitS: { quick: 180, full: 480 },
  async run(context) {
    const system = await context.system();
    if (!rabbitmqInstalled) context.log('rabbitmq-server is not installed: only the feed transport is measured');
    const broker = rabbitmqInstalled ? await startRabbitMq() : undefined;
    try {
      const variants = [await measure('feed', system, undefined, context)];
      if (broker) variants.push(await measure('rabbitmq', system, broker, context));
      return {
        figures: figures(variants),
        details: { variants, writers: WRITERS },
        notes: [
          `Transports: ${WRITERS} connections append events to a scratch producer database's outbox (paced to the target rate; steady 1,000/s with one event per transaction, then a ramp with 20 per transaction that stops at the first rate not kept up with); a group consumer applies each batch to a table in a scratch consumer database. Latency is from the producer's commit acknowledgement to the consumer's acknowledgement after its commit. Each step also splits it where the subscription hands the batch to the consumer (details: hops.toConsumer, the transport's part with the wait for the consumer's previous batch; hops.consumerTransaction, the consumer's own transaction). The RabbitMQ variant runs a local rabbitmq-server (one node, quorum queue, publisher confirms) as a child of the bench; both variants share the machine, run one after the other.`,
        ],
      };
    } finally {
      await broker?.stop();
    }
  },
};
