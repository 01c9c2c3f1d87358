import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';
import { CODES, LABELS, labelChanges, masterdataDatabase, runStep, VisibilityClock, WATCH_TRIGGER, watchTable, writeAtRate } from './propagation.ts';

const RATE = 1_000;
// `npm start` names masterdata's subscription after its database (reportingNames).
const SUBSCRIPTION = 'reporting_masterdata';

async function waitUntil(check: () => boolean, limitMs: number, signal: AbortSignal): Promise<boolean> {
  const began = performance.now();
  while (!check()) {
    if (performance.now() - began > limitMs || signal.aborted) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

const COPY = 'masterdata.labels';
const COPY_POLL_MS = 10;

/**
 * Sees changes arrive in the copy by reading it every COPY_POLL_MS, for while the watching trigger
 * is disabled: a commit that NOTIFYs takes PostgreSQL's cluster-wide notification lock and queue,
 * which halves what one apply worker applies per second (about 8 000–9 000 single-row
 * transactions/s against 17 000–25 000 without the trigger, measured on this machine), so a
 * backlog timed through it would time the trigger. Each change raises its label's version by one:
 * a copy at version v holds every change of that label up to v.
 */
async function watchCopyByReading(reporting: pg.Client, clock: VisibilityClock, signal: AbortSignal): Promise<{ stop(): Promise<void> }> {
  const read = async () => (await reporting.query<{ code: string; version: string }>(`SELECT code, version FROM ${COPY} WHERE code = ANY($1)`, [CODES])).rows;
  const seen = new Map((await read()).map((row) => [row.code, Number(row.version)]));
  let stopped = false;
  const polling = (async () => {
    while (!stopped && !signal.aborted) {
      const rows = await read();
      const now = performance.now();
      for (const row of rows) {
        const version = Number(row.version);
        for (let v = (seen.get(row.code) ?? version) + 1; v <= version; v++) clock.visible(`${row.code}:${v}`, now);
        seen.set(row.code, version);
      }
      await new Promise((resolve) => setTimeout(resolve, COPY_POLL_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await polling;
    },
  };
}

/**
 * The subscription disabled while masterdata writes at RATE for `seconds`, then enabled with the
 * writes going on: how fast reporting works off the backlog, and how long until it has caught up.
 */
async function catchUp(seconds: number, changes: ReturnType<typeof labelChanges>, clock: VisibilityClock, reporting: pg.Client, context: ScenarioContext) {
  const recorder = new LatencyRecorder();
  clock.measure(recorder);
  await reporting.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} DISABLE`);
  const missed = await writeAtRate({ rate: RATE, perTransaction: 1, seconds }, changes, clock, context.signal);
  const backlog = clock.backlog;
  // Seen by reading the copy, not by the trigger's NOTIFY, which would slow the apply down (watchCopyByReading).
  await reporting.query(`ALTER TABLE ${COPY} DISABLE TRIGGER ${WATCH_TRIGGER}`);
  const reading = await watchCopyByReading(reporting, clock, context.signal);
  await reporting.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} ENABLE`);
  const enabledAt = performance.now();
  const seenBefore = clock.seen;
  // The apply worker's start (launcher, connection, walsender): until the first change is applied.
  let firstAppliedAt: number | undefined;
  void waitUntil(() => clock.seen > seenBefore, 300_000, context.signal).then((ok) => {
    if (ok) firstAppliedAt = performance.now();
  });
  // The writes go on while reporting catches up; caught up once the backlog is what RATE keeps in flight.
  let caughtUpAt: number | undefined;
  const watching = waitUntil(() => clock.backlog <= RATE / 20, 300_000, context.signal).then((ok) => {
    if (ok) caughtUpAt = performance.now();
  });
  const during = writeAtRate({ rate: RATE, perTransaction: 1, seconds: 600 }, changes, clock, AbortSignal.any([context.signal, abortWhen(watching)]));
  await watching;
  const writtenDuring = await during;
  const catchUpS = caughtUpAt === undefined ? Number.POSITIVE_INFINITY : (caughtUpAt - enabledAt) / 1000;
  const startS = firstAppliedAt === undefined ? Number.POSITIVE_INFINITY : (firstAppliedAt - enabledAt) / 1000;
  const applied = clock.seen - seenBefore;
  await waitUntil(() => clock.backlog === 0, 10_000, context.signal);
  await reading.stop();
  await reporting.query(`ALTER TABLE ${COPY} ENABLE ALWAYS TRIGGER ${WATCH_TRIGGER}`);
  recorder.destroy();
  clock.forget();
  const appliedPerSecond = applied / catchUpS;
  // Against the rate the writers achieved (on a busy machine it falls short of RATE).
  const writtenPerSecond = missed / seconds;
  context.log(`catch-up: ${missed} changes while disabled ${seconds} s (${Math.round(writtenPerSecond)}/s, backlog ${backlog}); caught up in ${catchUpS.toFixed(1)} s (the first change applied after ${startS.toFixed(2)} s) with ${writtenDuring} more written meanwhile: ${Math.round(appliedPerSecond)} applied/s = ${(appliedPerSecond / writtenPerSecond).toFixed(1)}× the write rate`);
  return { disabledS: seconds, missed, writtenPerSecond, backlog, catchUpS, startS, writtenDuring, applied, appliedPerSecond, multiple: appliedPerSecond / writtenPerSecond };
}

function abortWhen(done: Promise<void>): AbortSignal {
  const controller = new AbortController();
  void done.then(() => controller.abort());
  return controller.signal;
}

export const replication: Scenario = {
  name: 'replication',
  title: 'Reporting replication: masterdata commit → row in the reporting copy',
  built: true,
  timeLimitS: { quick: 120, full: 400 },
  async run(context) {
    const system = await context.system();
    const seconds = context.quick ? 5 : 30;
    const db = await masterdataDatabase(system);
    // Fired by the apply worker at its commit.
    const watcher = await watchTable(system, { database: 'reporting', table: COPY, versionColumn: 'version', always: true });
    const clock = new VisibilityClock();
    watcher.onVisible((key) => clock.visible(key, performance.now()));
    try {
      const changes = labelChanges(db);
      for (let i = 0; i < LABELS; i += 100) await changes.create(CODES.slice(i, i + 100));
      await runStep({ rate: 200, perTransaction: 1, seconds: 2 }, changes, clock, system, context); // warm-up
      const steady = await runStep({ rate: RATE, perTransaction: 1, seconds }, changes, clock, system, context);
      const caught = await catchUp(seconds, changes, clock, watcher.client, context);
      const title = `masterdata commit → reporting copy row visible, ${RATE} changes/s`;
      const figures: Figure[] = [
        { key: 'replication.1000.p50', label: `${title}: p50`, value: round(steady.latency.p50Ms, 2), unit: 'ms' },
        { key: 'replication.1000.p99', label: `${title}: p99`, value: round(steady.latency.p99Ms, 2), unit: 'ms', goal: { comparison: '<=', value: 100 } },
        { key: 'replication.1000.achieved', label: `${title}: committed`, value: Math.round(steady.committedPerSecond), unit: 'changes/s' },
        {
          key: 'replication.catch-up',
          label: `catch-up after the subscription was disabled ${seconds} s under ${RATE} changes/s (applied rate ÷ write rate)`,
          value: Number.isFinite(caught.multiple) ? round(caught.multiple, 1) : 0,
          unit: '×',
          goal: { comparison: '>=', value: 10 },
          note: `${Math.round(caught.writtenPerSecond)} changes/s achieved while disabled, backlog ${caught.backlog}, caught up in ${round(caught.catchUpS, 1)} s (${Math.round(caught.appliedPerSecond)} applied/s) while the writes went on`,
        },
      ];
      return {
        figures,
        details: { steady, catchUp: caught, labels: LABELS },
        notes: [
          `Replication: the same label changes as the propagation scenario (masterdata's own statements, paced), replicated by \`npm start\`'s subscription into reporting's masterdata.labels copy; an ALWAYS trigger the bench adds to the copy NOTIFYs each row at the apply worker's commit; latency is from the masterdata commit's acknowledgement to that notification. Catch-up: the subscription is disabled for ${seconds} s of writes at ${RATE}/s, then enabled with the writes going on; the figure is the rate reporting applied changes until the backlog was down to ${RATE / 20}, divided by the write rate the writers achieved while it was disabled (the time includes the apply worker's start, logged apart). During the catch-up the trigger is disabled and the bench reads the copy every ${COPY_POLL_MS} ms instead: a NOTIFY per applied transaction takes PostgreSQL's cluster-wide notification lock and halves the apply rate, so it would time itself.`,
        ],
      };
    } finally {
      await watcher.client.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} ENABLE`).catch(() => undefined);
      await watcher.close();
      await db.destroy();
    }
  },
};
