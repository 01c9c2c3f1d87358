import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder, type LatencySummary } from '../lib/latency.ts';
import { CpuMeter, totalMemory } from '../lib/proc.ts';
import { MB, round } from '../lib/stats.ts';
import type { RunningSystem } from '../lib/system.ts';

const SCRATCH_DATABASE = 'archipelago_bench_scratch';
const UPSERT_KEYS = 10_000;
const PAYLOAD = JSON.stringify({ code: 'MR', label: 'Mr.', display_name: 'Mister', abbreviation: 'Mr.', display_order: 1, is_active: true });

type WriteKind = 'insert' | 'upsert';

const STATEMENTS: Record<WriteKind, string> = {
  insert: 'INSERT INTO bench_rows (id, payload) VALUES ($1, $2)',
  upsert:
    'INSERT INTO bench_rows (id, payload) VALUES ($1, $2) ' +
    'ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, version = bench_rows.version + 1, updated_at = now()',
};

export interface WriteRun {
  readonly kind: WriteKind;
  readonly connections: number;
  readonly commitsPerSecond: number;
  readonly latency: LatencySummary;
  readonly postgresPercentOfOneCore: number;
  readonly loadGeneratorPercentOfOneCore: number;
}

export async function connect(system: RunningSystem, database: string): Promise<pg.Client> {
  const password = (await readFile(path.join(system.dataDir, 'postgres/superuser-password'), 'utf8')).trim();
  const client = new pg.Client({ host: '127.0.0.1', port: system.ports.postgres, user: 'postgres', password, database });
  await client.connect();
  return client;
}

/** Empties the scratch table; an upsert run starts with every key present, so each write updates a row. */
async function resetTable(client: pg.Client, kind: WriteKind): Promise<void> {
  await client.query('TRUNCATE bench_rows');
  if (kind === 'upsert') await client.query('INSERT INTO bench_rows (id, payload) SELECT g, $1 FROM generate_series(1, $2::int) g', [PAYLOAD, UPSERT_KEYS]);
  await client.query('VACUUM ANALYZE bench_rows');
}

/** One connection writing single-row autocommit statements (one commit each) until the deadline. */
async function writer(client: pg.Client, kind: WriteKind, nextId: () => number, deadline: number, recorder: LatencyRecorder, signal: AbortSignal): Promise<void> {
  const query = { name: `bench_${kind}`, text: STATEMENTS[kind] };
  while (performance.now() < deadline && !signal.aborted) {
    const began = performance.now();
    await client.query({ ...query, values: [nextId(), PAYLOAD] });
    recorder.record(performance.now() - began);
  }
}

export interface Timing {
  readonly warmupS: number;
  readonly durationS: number;
}

async function measureWrites(system: RunningSystem, kind: WriteKind, connections: number, timing: Timing, context: ScenarioContext): Promise<WriteRun> {
  const admin = await connect(system, SCRATCH_DATABASE);
  const clients: pg.Client[] = [];
  try {
    await resetTable(admin, kind);
    for (let i = 0; i < connections; i++) clients.push(await connect(system, SCRATCH_DATABASE));
    let sequence = 0;
    const nextId = kind === 'insert' ? () => ++sequence : () => 1 + Math.floor(Math.random() * UPSERT_KEYS);
    const warmup = new LatencyRecorder();
    const warmupDeadline = performance.now() + timing.warmupS * 1000;
    await Promise.all(clients.map((client) => writer(client, kind, nextId, warmupDeadline, warmup, context.signal)));
    warmup.destroy();
    const recorder = new LatencyRecorder();
    try {
      const postgresCpu = new CpuMeter(() => system.postgresTree());
      const ownCpu = process.cpuUsage();
      const began = performance.now();
      const deadline = began + timing.durationS * 1000;
      await Promise.all(clients.map((client) => writer(client, kind, nextId, deadline, recorder, context.signal)));
      context.signal.throwIfAborted();
      const seconds = (performance.now() - began) / 1000;
      const own = process.cpuUsage(ownCpu);
      const run: WriteRun = {
        kind,
        connections,
        commitsPerSecond: recorder.count / seconds,
        latency: recorder.summary(),
        postgresPercentOfOneCore: postgresCpu.read().percentOfOneCore,
        loadGeneratorPercentOfOneCore: ((own.user + own.system) / 1e6 / seconds) * 100,
      };
      context.log(`${kind}, ${connections} connection(s): ${Math.round(run.commitsPerSecond)} commits/s, p50 ${run.latency.p50Ms.toFixed(3)} ms`);
      return run;
    } finally {
      recorder.destroy();
    }
  } finally {
    await Promise.allSettled([admin, ...clients].map((client) => client.end()));
  }
}

/** The settings that decide what a commit costs, to print next to the figures. */
async function durabilitySettings(client: pg.Client): Promise<Record<string, string>> {
  const { rows } = await client.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'wal_level') ORDER BY name",
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
}

function figures(runs: readonly WriteRun[]): Figure[] {
  return runs.flatMap((run): Figure[] => {
    const key = `baselines.pg-${run.kind}.${run.connections}`;
    const title = `pg ${run.kind === 'insert' ? 'INSERT' : 'UPSERT'}, ${run.connections} connection${run.connections === 1 ? '' : 's'}`;
    return [
      { key: `${key}.cps`, label: `${title}: commits/s`, value: Math.round(run.commitsPerSecond), unit: 'commits/s', isBaseline: true },
      { key: `${key}.p50`, label: `${title}: commit latency p50`, value: round(run.latency.p50Ms, 3), unit: 'ms', isBaseline: true },
      { key: `${key}.p95`, label: `${title}: commit latency p95`, value: round(run.latency.p95Ms, 3), unit: 'ms', isBaseline: true },
      { key: `${key}.p99`, label: `${title}: commit latency p99`, value: round(run.latency.p99Ms, 3), unit: 'ms', isBaseline: true },
      { key: `${key}.cpu`, label: `${title}: PostgreSQL CPU`, value: round(run.postgresPercentOfOneCore, 1), unit: '% of a core', isBaseline: true },
    ];
  });
}

/**
 * Single-row commit rates of the system's own PostgreSQL through `pg`, on a scratch database
 * created for the purpose and dropped after: the baselines other scenarios compare with.
 */
export async function measureWriteBaselines(
  system: RunningSystem,
  plan: readonly { kind: WriteKind; connections: number }[],
  timing: Timing,
  context: ScenarioContext,
): Promise<{ runs: WriteRun[]; settings: Record<string, string> }> {
  const admin = await connect(system, 'postgres');
  try {
    const settings = await durabilitySettings(admin);
    await admin.query(`DROP DATABASE IF EXISTS ${SCRATCH_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${SCRATCH_DATABASE}`);
    const setup = await connect(system, SCRATCH_DATABASE);
    try {
      await setup.query('CREATE TABLE bench_rows (id bigint PRIMARY KEY, payload text NOT NULL, version integer NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT now())');
    } finally {
      await setup.end();
    }
    const runs: WriteRun[] = [];
    for (const { kind, connections } of plan) runs.push(await measureWrites(system, kind, connections, timing, context));
    return { runs, settings };
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${SCRATCH_DATABASE} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

export const baselines: Scenario = {
  name: 'baselines',
  title: 'Baselines: single-row PostgreSQL writes',
  built: true,
  timeLimitS: { quick: 90, full: 180 },
  async run(context) {
    const timing: Timing = { warmupS: context.quick ? 0.5 : 2, durationS: context.quick ? 3 : 10 };
    const system = await context.system();
    const plan = (['insert', 'upsert'] as const).flatMap((kind) => [1, 8].map((connections) => ({ kind, connections })));
    const { runs, settings } = await measureWriteBaselines(system, plan, timing, context);
    const postgresMemory = totalMemory(system.postgresTree());
    return {
      figures: [
        ...figures(runs),
        postgresMemory.pssBytes === null
          ? { key: 'baselines.pg-rss', label: 'PostgreSQL RSS after the write runs, all processes', value: round(postgresMemory.rssBytes / MB, 1), unit: 'MB', isBaseline: true }
          : { key: 'baselines.pg-pss', label: 'PostgreSQL PSS after the write runs, all processes', value: round(postgresMemory.pssBytes / MB, 1), unit: 'MB', isBaseline: true },
      ],
      details: { ...timing, upsertKeys: UPSERT_KEYS, settings, runs, postgresMemory },
      notes: [
        `PostgreSQL baselines: single-row autocommit INSERT (new keys) and UPSERT (INSERT … ON CONFLICT DO UPDATE on ${UPSERT_KEYS} pre-filled keys, so each one updates) through \`pg\`, ${timing.durationS} s each after ${timing.warmupS} s of warm-up, as superuser on a scratch database of the system's own embedded cluster (${Object.entries(settings).map(([name, value]) => `${name}=${value}`).join(', ')}).`,
      ],
    };
  },
};
