import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';
import { CODES, LABELS, labelChanges, masterdataDatabase, runStep, VisibilityClock, watchTable, writeAtRate } from './propagation.ts';

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
  await reporting.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} ENABLE`);
  const enabledAt = performance.now();
  const seenBefore = clock.seen;
  // The writes go on while reporting catches up; caught up once the backlog is what RATE keeps in flight.
  let caughtUpAt: number | undefined;
  const watching = waitUntil(() => clock.backlog <= RATE / 20, 300_000, context.signal).then((ok) => {
    if (ok) caughtUpAt = performance.now();
  });
  const during = writeAtRate({ rate: RATE, perTransaction: 1, seconds: 600 }, changes, clock, AbortSignal.any([context.signal, abortWhen(watching)]));
  await watching;
  const writtenDuring = await during;
  const catchUpS = caughtUpAt === undefined ? Number.POSITIVE_INFINITY : (caughtUpAt - enabledAt) / 1000;
  const applied = clock.seen - seenBefore;
  await waitUntil(() => clock.backlog === 0, 10_000, context.signal);
  recorder.destroy();
  clock.forget();
  const appliedPerSecond = applied / catchUpS;
  // Against the rate the writers achieved (on a busy machine it falls short of RATE).
  const writtenPerSecond = missed / seconds;
  context.log(`catch-up: ${missed} changes while disabled ${seconds} s (${Math.round(writtenPerSecond)}/s, backlog ${backlog}); caught up in ${catchUpS.toFixed(1)} s with ${writtenDuring} more written meanwhile: ${Math.round(appliedPerSecond)} applied/s = ${(appliedPerSecond / writtenPerSecond).toFixed(1)}× the write rate`);
  return { disabledS: seconds, missed, writtenPerSecond, backlog, catchUpS, writtenDuring, applied, appliedPerSecond, multiple: appliedPerSecond / writtenPerSecond };
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
    const watcher = await watchTable(system, { database: 'reporting', table: 'masterdata.labels', versionColumn: 'version', always: true });
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
          `Replication: the same label changes as the propagation scenario (masterdata's own statements, paced), replicated by \`npm start\`'s subscription into reporting's masterdata.labels copy; an ALWAYS trigger the bench adds to the copy NOTIFYs each row at the apply worker's commit; latency is from the masterdata commit's acknowledgement to that notification. Catch-up: the subscription is disabled for ${seconds} s of writes at ${RATE}/s, then enabled with the writes going on; the figure is the rate reporting applied changes until the backlog was down to ${RATE / 20}, divided by the write rate the writers achieved while it was disabled (the time includes the apply worker's start).`,
        ],
      };
    } finally {
      await watcher.client.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} ENABLE`).catch(() => undefined);
      await watcher.close();
      await db.destroy();
    }
  },
};
