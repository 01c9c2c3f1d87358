import { hostname } from 'node:os';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { JobDefinition } from '@archipelago/registry';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { StartupError } from '../startup.ts';
import { effectiveSchedule, nextRunAfter } from './schedule.ts';

/** What a run is told: why it runs, the scheduled time it runs for, and when to give up (the service is closing). */
export interface JobContext {
  readonly trigger: 'schedule' | 'manual';
  /** The scheduled time this run is for; undefined for a manual run. */
  readonly tick: Date | undefined;
  readonly signal: AbortSignal;
}

/** Does a job's work; what it returns (a small JSON summary, e.g. `{ pruned: 12 }`) is kept as the run's result. */
export type JobHandler = (context: JobContext) => Promise<unknown>;

/** A job's state as every instance reports it (read from the service's database). */
export interface JobStatus {
  readonly name: string;
  readonly description: string;
  /** The cron expression (UTC) in force, or null when the schedule is off. */
  readonly schedule: string | null;
  readonly nextRunAt: string | null;
  /** Whether some instance runs it right now (its advisory lock is held), since when and where. */
  readonly running: { readonly since: string | null; readonly instance: string | null } | null;
  /** The last finished run. */
  readonly lastRun: {
    readonly trigger: 'schedule' | 'manual';
    readonly instance: string;
    readonly startedAt: string;
    readonly finishedAt: string;
    readonly durationMs: number;
    readonly outcome: 'succeeded' | 'failed';
    readonly error: string | null;
    readonly result: unknown;
  } | null;
}

/** The running scheduler of one service instance. */
export interface Jobs {
  readonly service: string;
  list(): Promise<JobStatus[]>;
  /** Runs a job now, on this instance, and returns its status; a CONFLICT while another run holds its lock. */
  run(name: string): Promise<JobStatus>;
  stop(): Promise<void>;
}

export interface JobsOptions<DB> {
  /** Registry key of the service, for messages. */
  readonly service: string;
  /** The service's own database: the lock and `job_status` (`createJobTablesV1`) live there. */
  readonly db: Kysely<DB>;
  /** The service's jobs, as the registry declares them. */
  readonly declared: readonly JobDefinition[];
  /** One handler per declared job, by name. */
  readonly handlers: Readonly<Record<string, JobHandler>>;
  /** Where schedule overrides (`scheduleVariable`, e.g. `LOOKUP_RECONCILE_AT`) are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** Names this instance in the status; default `<hostname>:<pid>`. */
  readonly instance?: string;
}

// Advisory lock keys: (JOBS, a job's hash). The two-integer form never meets the one-bigint form the migrator uses.
const JOBS_LOCK_CLASS = 0x4a4f4253; // 'JOBS'
const lockKey = (job: string | RawBuilder<unknown>) => sql`(hashtext(${job}) & 2147483647)`;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface StatusRow {
  job: string;
  schedule: string | null;
  next_run_at: Date | null;
  running_since: Date | null;
  running_instance: string | null;
  locked: boolean;
  last_trigger: 'schedule' | 'manual' | null;
  last_instance: string | null;
  last_started_at: Date | null;
  last_finished_at: Date | null;
  last_duration_ms: number | null;
  last_outcome: 'succeeded' | 'failed' | null;
  last_error: string | null;
  last_result: unknown;
}

/**
 * Runs a service's declared jobs on their cron schedules (docs/architecture.md#jobs). Every instance keeps the
 * timers, and at each tick the instances race for the job's PostgreSQL advisory lock; the winner
 * claims the tick in `job_status` (an instance that comes late finds it claimed), so N instances
 * run each tick once. A run still going when the next tick comes makes that tick skipped.
 *
 * @example
 * const jobs = await startJobs({ service: 'core', db, declared: registry.service('core').jobs ?? [], env,
 *   handlers: { 'outbox.prune': pruneOutboxJob(db), 'lookups.reconcile': () => sync.reconcile() } });
 */
export async function startJobs<DB>(options: JobsOptions<DB>): Promise<Jobs> {
  const { service, logger } = options;
  const db = options.db as Kysely<unknown>;
  const declaredNames = new Set(options.declared.map((job) => job.name));
  const unhandled = options.declared.filter((job) => !options.handlers[job.name]).map((job) => job.name);
  const undeclared = Object.keys(options.handlers).filter((name) => !declaredNames.has(name));
  if (unhandled.length > 0) throw new StartupError(`${service} declares job(s) ${unhandled.join(', ')} in the registry but registers no handler for them`);
  if (undeclared.length > 0) {
    throw new StartupError(`${service} registers job(s) ${undeclared.join(', ')} that the registry does not declare (registry/src/services.ts, jobs)`);
  }
  const schedules = new Map(options.declared.map((job) => [job.name, effectiveSchedule(job, options.env ?? {})]));
  const instance = options.instance ?? `${hostname()}:${process.pid}`;
  const abort = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const timers = new Map<string, NodeJS.Timeout>();

  for (const job of options.declared) {
    const schedule = schedules.get(job.name);
    const next = schedule ? nextRunAfter(schedule, new Date()) : undefined;
    await sql`
      INSERT INTO job_status (job, schedule, next_run_at) VALUES (${job.name}, ${schedule ?? null}, ${next ?? null})
      ON CONFLICT (job) DO UPDATE SET schedule = excluded.schedule, next_run_at = excluded.next_run_at`.execute(db);
  }

  // Holds the job's lock for the run in a transaction that writes nothing (no transaction id, so it
  // holds back no event feed); its status is written beside it. `claim` decides, under the lock,
  // whether this instance runs. Returns false when the lock was taken or the claim refused.
  const runLocked = (job: JobDefinition, trigger: JobContext['trigger'], tick: Date | undefined, claim: () => Promise<boolean>) =>
    db.transaction().execute(async (lock) => {
      const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${JOBS_LOCK_CLASS}, ${lockKey(job.name)}) AS locked`.execute(lock);
      if (!rows[0]!.locked || !(await claim())) return false;
      const startedAt = new Date();
      await sql`UPDATE job_status SET running_since = ${startedAt}, running_instance = ${instance} WHERE job = ${job.name}`.execute(db);
      let outcome: 'succeeded' | 'failed' = 'succeeded';
      let error: string | null = null;
      let result: unknown = null;
      try {
        result = (await options.handlers[job.name]!({ trigger, tick, signal: abort.signal })) ?? null;
      } catch (failure) {
        outcome = 'failed';
        error = failure instanceof Error ? failure.message : String(failure);
        logger?.error({ err: failure, job: job.name, trigger }, 'job failed');
      }
      const finishedAt = new Date();
      await sql`
        UPDATE job_status SET running_since = NULL, running_instance = NULL, last_trigger = ${trigger}, last_instance = ${instance},
          last_started_at = ${startedAt}, last_finished_at = ${finishedAt}, last_duration_ms = ${finishedAt.getTime() - startedAt.getTime()},
          last_outcome = ${outcome}, last_error = ${error}, last_result = ${resultJson(result)}::jsonb
        WHERE job = ${job.name}`.execute(db);
      if (outcome === 'succeeded') logger?.info({ job: job.name, trigger, tick, durationMs: finishedAt.getTime() - startedAt.getTime(), result }, 'job finished');
      return true;
    });

  const track = <T>(promise: Promise<T>): Promise<T> => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise)).catch(() => undefined);
    return promise;
  };

  // The tick is claimed only if no instance claimed it (or a later one) before: once per tick.
  const runTick = (job: JobDefinition, schedule: string, tick: Date) =>
    runLocked(job, 'schedule', tick, async () => {
      const next = nextRunAfter(schedule, tick);
      const claimed = await sql`
        UPDATE job_status SET last_tick = ${tick}, next_run_at = ${next ?? null}
        WHERE job = ${job.name} AND (last_tick IS NULL OR last_tick < ${tick})`.execute(db);
      return claimed.numAffectedRows === 1n;
    });

  const arm = (job: JobDefinition, schedule: string, after: Date) => {
    const tick = nextRunAfter(schedule, after);
    if (!tick || abort.signal.aborted) return;
    const wait = () => {
      const timer = setTimeout(() => {
        if (abort.signal.aborted) return;
        if (Date.now() < tick.getTime()) return wait(); // woken early, or a wait longer than a timer holds
        void track(runTick(job, schedule, tick))
          .catch((error: unknown) => logger?.error({ err: error, job: job.name }, 'job could not run at its tick; trying at the next'))
          .finally(() => arm(job, schedule, new Date(Math.max(Date.now(), tick.getTime()))));
      }, Math.min(Math.max(tick.getTime() - Date.now(), 0), MAX_TIMER_MS));
      timer.unref();
      timers.set(job.name, timer);
    };
    wait();
  };
  for (const job of options.declared) {
    const schedule = schedules.get(job.name);
    if (schedule) arm(job, schedule, new Date());
  }

  const list = async (): Promise<JobStatus[]> => {
    const { rows } = await sql<StatusRow>`
      SELECT s.*, EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ${JOBS_LOCK_CLASS}::oid AND l.objid = ${lockKey(sql`s.job`)}::oid
      ) AS locked
      FROM job_status s WHERE s.job = ANY(${[...declaredNames]}::text[])`.execute(db);
    const byName = new Map(rows.map((row) => [row.job, row]));
    return options.declared.map((job) => statusOf(job, byName.get(job.name)));
  };

  return {
    service,
    list,
    async run(name) {
      const job = options.declared.find((candidate) => candidate.name === name);
      if (!job) throw new AppError('NOT_FOUND', `${service} has no job "${name}" (it has ${[...declaredNames].join(', ') || 'none'})`);
      if (abort.signal.aborted) throw new AppError('UNAVAILABLE', `${service} is shutting down`);
      const ran = await track(runLocked(job, 'manual', undefined, async () => true));
      if (!ran) throw new AppError('CONFLICT', `${job.name} is running already (on ${service}'s instance that holds its lock); try again when it has finished`);
      return (await list()).find((status) => status.name === name)!;
    },
    async stop() {
      abort.abort();
      for (const timer of timers.values()) clearTimeout(timer);
      await Promise.allSettled([...inFlight]);
    },
  };
}

// A result that JSON cannot carry (a bigint, a cycle) must not keep the run's status from being written.
function resultJson(result: unknown): string {
  try {
    return JSON.stringify(result) ?? 'null';
  } catch {
    return JSON.stringify({ unserialisable: String(result) });
  }
}

function statusOf(job: JobDefinition, row: StatusRow | undefined): JobStatus {
  const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;
  return {
    name: job.name,
    description: job.description,
    schedule: row?.schedule ?? null,
    nextRunAt: iso(row?.next_run_at),
    running: row?.locked ? { since: iso(row.running_since), instance: row.running_instance } : null,
    lastRun: row?.last_finished_at && row.last_outcome && row.last_trigger
      ? {
          trigger: row.last_trigger,
          instance: row.last_instance ?? '',
          startedAt: iso(row.last_started_at)!,
          finishedAt: iso(row.last_finished_at)!,
          durationMs: row.last_duration_ms ?? 0,
          outcome: row.last_outcome,
          error: row.last_error,
          result: row.last_result,
        }
      : null,
  };
}
