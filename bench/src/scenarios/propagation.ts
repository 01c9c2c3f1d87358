import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { appendEvents, type NewEvent } from '@archipelago/platform/events';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder, type LatencySummary } from '../lib/latency.ts';
import { CpuMeter } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import type { RunningSystem } from '../lib/system.ts';
import { serviceDatabase } from '../lib/databases.ts';
import { connect, measureWriteBaselines, type WriteRun } from './baselines.ts';

export const LABELS = 1_000;
const WRITERS = 8;
const CHANNEL = 'bench_row_visible';
/** The name of the trigger `watchTable` adds (and of its function). */
export const WATCH_TRIGGER = 'bench_row_visible';
export const CODES = Array.from({ length: LABELS }, (_, i) => `B${String(i).padStart(4, '0')}`);

export interface Step {
  readonly rate: number;
  /** Label changes per masterdata transaction (1: every change commits alone). */
  readonly perTransaction: number;
  readonly seconds: number;
}

export interface StepResult extends Step {
  readonly committedPerSecond: number;
  readonly visiblePerSecond: number;
  /** Committed changes not yet visible in core when the step ended. */
  readonly backlogAtEnd: number;
  /** Time for that backlog to drain after the step (or until the drain limit). */
  readonly drainMs: number;
  readonly latency: LatencySummary;
  readonly sustained: boolean;
  readonly postgresPercentOfOneCore: number;
}

/** Masterdata's own statements: a label change and its event, in one transaction. */
export function labelChanges(db: Kysely<unknown>) {
  const toEvent = (row: Record<string, unknown>, type: 'label.created' | 'label.updated'): NewEvent => ({
    type,
    aggregateType: 'label',
    aggregateId: String(row.code),
    aggregateVersion: Number(row.version),
    payload: row,
    metadata: { correlationId: 'bench' },
  });
  return {
    async create(codes: readonly string[]) {
      await db.transaction().execute(async (trx) => {
        const rows = await sql<Record<string, unknown>>`
          INSERT INTO labels (code, label, display_name, display_order)
          SELECT code, code, code, 1000 FROM unnest(${codes}::text[]) AS code
          ON CONFLICT (code) DO UPDATE SET version = labels.version + 1, updated_at = now(), deleted_at = NULL
          RETURNING id, code, label, display_name, abbreviation, display_order, is_active, version`.execute(trx);
        await appendEvents(trx, rows.rows.map((row) => toEvent(row, 'label.created')));
      });
    },
    async change(codes: readonly string[]): Promise<{ code: string; version: number }[]> {
      return db.transaction().execute(async (trx) => {
        const rows = await sql<Record<string, unknown>>`
          UPDATE labels SET label = 'v' || (version + 1), version = version + 1, updated_at = now()
          WHERE code = ANY(${codes}::text[])
          RETURNING id, code, label, display_name, abbreviation, display_order, is_active, version`.execute(trx);
        await appendEvents(trx, rows.rows.map((row) => toEvent(row, 'label.updated')));
        return rows.rows.map((row) => ({ code: String(row.code), version: Number(row.version) }));
      });
    },
  };
}

/** A table whose rows the bench watches arrive: a trigger it adds NOTIFYs `version` of each row at its writer's commit. */
export interface WatchedTable {
  readonly database: string;
  /** Schema-qualified, e.g. `core.labels_lookup`. */
  readonly table: string;
  readonly versionColumn: string;
  /** Fire for logical replication's apply workers too (session_replication_role = replica). */
  readonly always?: boolean;
}

/** Sees each row of `watched` become visible: `code:version` per row written, as a notification. */
export async function watchTable(system: RunningSystem, watched: WatchedTable): Promise<{ client: pg.Client; onVisible(listener: (key: string) => void): void; close(): Promise<void> }> {
  const client = await connect(system, watched.database);
  const schema = watched.table.split('.')[0]!;
  await client.query(`
    CREATE OR REPLACE FUNCTION ${schema}.${WATCH_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('${CHANNEL}', NEW.code || ':' || NEW.${watched.versionColumn}); RETURN NULL; END $$`);
  await client.query(`DROP TRIGGER IF EXISTS ${WATCH_TRIGGER} ON ${watched.table}`);
  await client.query(`CREATE TRIGGER ${WATCH_TRIGGER} AFTER INSERT OR UPDATE ON ${watched.table} FOR EACH ROW EXECUTE FUNCTION ${schema}.${WATCH_TRIGGER}()`);
  if (watched.always) await client.query(`ALTER TABLE ${watched.table} ENABLE ALWAYS TRIGGER ${WATCH_TRIGGER}`);
  await client.query(`LISTEN ${CHANNEL}`);
  return {
    client,
    onVisible(listener) {
      client.on('notification', (message) => listener(message.payload ?? ''));
    },
    async close() {
      await client.query(`DROP TRIGGER IF EXISTS ${WATCH_TRIGGER} ON ${watched.table}`).catch(() => undefined);
      await client.query(`DROP FUNCTION IF EXISTS ${schema}.${WATCH_TRIGGER}()`).catch(() => undefined);
      await client.end();
    },
  };
}

export async function masterdataDatabase(system: RunningSystem): Promise<Kysely<unknown>> {
  return serviceDatabase(system, 'masterdata', { applicationName: 'bench-masterdata-writer', max: WRITERS });
}

/**
 * Matches each change's commit with its visibility in core, whichever is seen first (a fast
 * consumer can announce a row before the commit's acknowledgement reaches the bench).
 */
export class VisibilityClock {
  private readonly changes = new Map<string, { committedAt?: number; visibleAt?: number }>();
  private recorder: LatencyRecorder | undefined;
  seen = 0;

  measure(recorder: LatencyRecorder): void {
    this.recorder = recorder;
    this.seen = 0;
  }

  committed(key: string, at: number): void {
    this.note(key, { committedAt: at });
  }

  visible(key: string, at: number): void {
    this.note(key, { visibleAt: at });
  }

  /** Committed changes not yet visible. */
  get backlog(): number {
    let count = 0;
    for (const change of this.changes.values()) if (change.committedAt !== undefined) count++;
    return count;
  }

  forget(): void {
    this.changes.clear();
  }

  private note(key: string, seen: { committedAt?: number; visibleAt?: number }): void {
    const change = { ...this.changes.get(key), ...seen };
    if (change.committedAt === undefined || change.visibleAt === undefined) {
      this.changes.set(key, change);
      return;
    }
    this.changes.delete(key);
    this.seen++;
    this.recorder?.record(Math.max(0, change.visibleAt - change.committedAt));
  }
}

let nextCode = 0;

/** Label changes paced to `step.rate` for `step.seconds` on WRITERS connections, each commit told to `clock`; returns how many committed. */
export async function writeAtRate(step: Step, changes: ReturnType<typeof labelChanges>, clock: VisibilityClock, signal: AbortSignal): Promise<number> {
  let committed = 0;
  let issued = 0;
  let inFlight = 0;
  const began = performance.now();
  const end = began + step.seconds * 1000;
  const send = async () => {
    inFlight++;
    const batch = Array.from({ length: step.perTransaction }, () => CODES[nextCode++ % LABELS]!);
    try {
      const rows = await changes.change(batch);
      const committedAt = performance.now();
      committed += rows.length;
      for (const row of rows) clock.committed(`${row.code}:${row.version}`, committedAt);
    } finally {
      inFlight--;
    }
  };
  const sends: Promise<void>[] = [];
  while (performance.now() < end && !signal.aborted) {
    const due = Math.floor(((performance.now() - began) / 1000) * step.rate);
    while (issued < due && inFlight < WRITERS) {
      issued += step.perTransaction;
      sends.push(send());
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(sends);
  return committed;
}

export async function runStep(step: Step, changes: ReturnType<typeof labelChanges>, clock: VisibilityClock, system: RunningSystem, context: ScenarioContext): Promise<StepResult> {
  const recorder = new LatencyRecorder();
  clock.measure(recorder);
  const cpu = new CpuMeter(() => system.postgresTree());
  const began = performance.now();
  const committed = await writeAtRate(step, changes, clock, context.signal);
  const elapsedS = (performance.now() - began) / 1000;
  const seenAtEnd = clock.seen;
  const backlogAtEnd = clock.backlog;
  const drainStarted = performance.now();
  while (clock.backlog > 0 && performance.now() - drainStarted < 10_000 && !context.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 5));
  const drainMs = clock.backlog === 0 ? performance.now() - drainStarted : Number.POSITIVE_INFINITY;
  const latency = recorder.summary();
  recorder.destroy();
  clock.forget();
  const committedPerSecond = committed / elapsedS;
  const result: StepResult = {
    ...step,
    committedPerSecond,
    visiblePerSecond: seenAtEnd / elapsedS,
    backlogAtEnd,
    drainMs,
    latency,
    // Kept up: the target rate was committed, core made at least 97 % of it visible within the step
    // (the backlog did not build up), and what was in flight at the end drained within half a second.
    sustained: committedPerSecond >= step.rate * 0.95 && seenAtEnd >= committed * 0.97 && drainMs <= 500,
    postgresPercentOfOneCore: cpu.read().percentOfOneCore,
  };
  context.log(`${step.rate}/s (${step.perTransaction} per tx): committed ${Math.round(committedPerSecond)}/s, visible ${Math.round(result.visiblePerSecond)}/s, p50 ${latency.p50Ms.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms, backlog ${backlogAtEnd}, drained in ${Number.isFinite(drainMs) ? Math.round(drainMs) : '>10000'} ms${result.sustained ? '' : ' — not sustained'}`);
  return result;
}

function figures(steady: readonly StepResult[], ramp: readonly StepResult[], baselines: readonly WriteRun[]): Figure[] {
  const upsert = baselines.find((run) => run.kind === 'upsert');
  const latencyFigures = steady.flatMap((step): Figure[] => {
    const key = `propagation.${step.rate}`;
    const title = `masterdata commit → core lookup row visible, ${step.rate} changes/s`;
    const goal = step.rate === 1_000 ? { goal: { comparison: '<=' as const, value: 25 } } : {};
    return [
      { key: `${key}.p50`, label: `${title}: p50`, value: round(step.latency.p50Ms, 2), unit: 'ms' },
      { key: `${key}.p95`, label: `${title}: p95`, value: round(step.latency.p95Ms, 2), unit: 'ms' },
      { key: `${key}.p99`, label: `${title}: p99`, value: round(step.latency.p99Ms, 2), unit: 'ms', ...goal },
      { key: `${key}.achieved`, label: `${title}: committed`, value: Math.round(step.committedPerSecond), unit: 'changes/s' },
    ];
  });
  const best = ramp.filter((step) => step.sustained).at(-1);
  return [
    ...latencyFigures,
    {
      key: 'propagation.sustained',
      label: 'highest sustained propagation rate (changes/s kept up with, lag bounded)',
      value: best ? Math.round(best.committedPerSecond) : 0,
      unit: 'changes/s',
      goal: { comparison: '>=', value: 5_000 },
      ...(upsert ? { baseline: { name: `pg UPSERT, ${upsert.connections} connections`, value: upsert.commitsPerSecond } } : {}),
      note: best ? `at ${best.perTransaction} changes per masterdata transaction; p99 ${round(best.latency.p99Ms, 1)} ms` : 'no step of the ramp was sustained',
    },
    ...baselines.map((run): Figure => ({
      key: `propagation.baseline.pg-${run.kind}`,
      label: `pg ${run.kind === 'insert' ? 'INSERT' : 'UPSERT'}, ${run.connections} connections (same run)`,
      value: Math.round(run.commitsPerSecond),
      unit: 'commits/s',
      isBaseline: true,
    })),
  ];
}

export const propagation: Scenario = {
  name: 'propagation',
  title: 'Event propagation: masterdata change → core lookup row',
  built: true,
  timeLimitS: { quick: 120, full: 300 },
  async run(context) {
    const system = await context.system();
    const seconds = context.quick ? 5 : 30;
    const db = await masterdataDatabase(system);
    const watcher = await watchTable(system, { database: 'core', table: 'core.labels_lookup', versionColumn: 'source_version' });
    const clock = new VisibilityClock();
    watcher.onVisible((key) => clock.visible(key, performance.now()));
    try {
      const changes = labelChanges(db);
      for (let i = 0; i < LABELS; i += 100) await changes.create(CODES.slice(i, i + 100));
      await runStep({ rate: 200, perTransaction: 1, seconds: 2 }, changes, clock, system, context); // warm-up
      const steady = [
        await runStep({ rate: 100, perTransaction: 1, seconds }, changes, clock, system, context),
        await runStep({ rate: 1_000, perTransaction: 1, seconds }, changes, clock, system, context),
      ];
      const ramp: StepResult[] = [];
      for (const rate of [2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 14_000, 16_000]) {
        const step = await runStep({ rate, perTransaction: 20, seconds: context.quick ? 3 : 8 }, changes, clock, system, context);
        ramp.push(step);
        if (!step.sustained) break;
      }
      const baselines = await measureWriteBaselines(system, [{ kind: 'insert', connections: WRITERS }, { kind: 'upsert', connections: WRITERS }], { warmupS: 0.5, durationS: 3 }, context);
      return {
        figures: figures(steady, ramp, baselines.runs),
        details: { steady, ramp, baselines: baselines.runs, settings: baselines.settings, labels: LABELS, writers: WRITERS },
        notes: [
          `Propagation: the bench changes ${LABELS} labels in masterdata's database with masterdata's own statements (UPDATE labels + outbox INSERT in one transaction, as masterdata's app role, ${WRITERS} connections, paced to the target rate); core's lookup consumer follows masterdata's event feed as in \`npm start\`. A trigger the bench adds to core.labels_lookup NOTIFYs each row at the consumer's commit; latency is from the masterdata commit's acknowledgement to that notification (both clocks in the bench process). Steady rates run ${seconds} s each with one change per transaction; the ramp batches 20 changes per transaction and stops at the first rate it cannot keep up with (committed < 95 % of target, core made < 97 % of the committed changes visible within the step, or the backlog at the end takes over 0.5 s to drain).`,
        ],
      };
    } finally {
      await watcher.close();
      await db.destroy();
    }
  },
};
