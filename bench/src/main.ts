/**
 * The benchmark suite: `npm run bench [-- [--quick] [scenario…]]`. Builds dist/, starts the system
 * itself on a fresh data directory and free loopback ports, runs each scenario within its time
 * limit, writes bench/results/latest.{json,md} (and an SVG chart), and cleans up everything it
 * started, also on failure or Ctrl-C.
 */
import process from 'node:process';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Scenario, ScenarioContext } from './scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { runAllCleanups } from './lib/cleanup.ts';
import { machineBusy } from './lib/proc.ts';
import { buildDist, RunningSystem } from './lib/system.ts';
import { makeDataDir, type TempDir } from './lib/temp.ts';
import { buildReport, loadAverage } from './report/build.ts';
import { formatDuration } from './report/format.ts';
import type { ScenarioOutcome } from './report/types.ts';
import { writeReport } from './report/write.ts';

/** Time a scenario gets, after its limit, to notice the abort and clean up before we move on. */
const ABORT_GRACE_MS = 60_000;

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

const USAGE = `Usage: npm run bench [-- [--quick] [scenario…]]

Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (default: all but ${SCENARIOS.filter((s) => s.onlyWhenNamed).map((s) => s.name).join(', ')}).
--quick  shorter runs (finishes in under 2 minutes).`;

function selectScenarios(names: readonly string[]): Scenario[] {
  if (names.length === 0) return SCENARIOS.filter((s) => !s.onlyWhenNamed);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new UsageError(`Unknown scenario ${unknown.join(', ')}.\n\n${USAGE}`);
  return SCENARIOS.filter((s) => names.includes(s.name));
}

class UsageError extends Error {}

/** The system shared by the scenarios that measure a running system; started on first use. */
class SharedSystem {
  private starting: Promise<RunningSystem> | undefined;
  private dir: TempDir | undefined;

  get(signal: AbortSignal): Promise<RunningSystem> {
    this.starting ??= this.start(signal).catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    try {
      if (starting) {
        const stopped = await (await starting).stop();
        if (stopped.code !== 0) log(`warning: the shared system exited with ${stopped.code}`);
      }
    } catch {
      // it failed to start, and was stopped then
    } finally {
      await this.dir?.remove();
    }
  }

  private async start(signal: AbortSignal): Promise<RunningSystem> {
    this.dir ??= await makeDataDir('shared');
    log('starting the system for the load scenarios…');
    const { system, readyMs } = await RunningSystem.start(this.dir.path, signal);
    log(`system ready in ${(readyMs / 1000).toFixed(1)} s`);
    return system;
  }
}

async function runScenario(scenario: Scenario, quick: boolean, shared: SharedSystem, interrupt: AbortSignal): Promise<ScenarioOutcome> {
  const began = performance.now();
  const seconds = (): number => Math.round((performance.now() - began) / 100) / 10;
  if (!scenario.built) {
    const result = await scenario.run(context(scenario, quick, shared, interrupt));
    return { name: scenario.name, title: scenario.title, status: 'not built yet', seconds: 0, result };
  }
  const limitS = quick ? scenario.timeLimitS.quick : scenario.timeLimitS.full;
  const signal = AbortSignal.any([interrupt, AbortSignal.timeout(limitS * 1000)]);
  log(`\n▶ ${scenario.name}: ${scenario.title} (limit ${limitS} s)`);
  try {
    const result = await withGrace(scenario.run(context(scenario, quick, shared, signal)), signal);
    log(`✓ ${scenario.name} done in ${seconds()} s`);
    return { name: scenario.name, title: scenario.title, status: 'measured', seconds: seconds(), result };
  } catch (error) {
    const message = signal.aborted && !interrupt.aborted ? `time limit of ${limitS} s reached: ${(error as Error).message}` : (error as Error).stack ?? String(error);
    log(`✗ ${scenario.name} failed after ${seconds()} s: ${message}`);
    return { name: scenario.name, title: scenario.title, status: 'failed', seconds: seconds(), error: message };
  }
}

function context(scenario: Scenario, quick: boolean, shared: SharedSystem, signal: AbortSignal): ScenarioContext {
  return { quick, signal, system: () => shared.get(signal), log: (message) => log(`  ${scenario.name}: ${message}`) };
}

/** `work`, unless it is still running `ABORT_GRACE_MS` after `signal` aborted it. */
function withGrace<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<never>((_, reject) => {
    const arm = (): void => {
      timer = setTimeout(() => reject(new Error('did not stop after being aborted')), ABORT_GRACE_MS);
    };
    if (signal.aborted) arm();
    else signal.addEventListener('abort', arm, { once: true });
  });
  return Promise.race([work, grace]).finally(() => clearTimeout(timer));
}

/** Ctrl-C or SIGTERM aborts the running scenario; cleanups still run before we exit. */
function listenForInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    log(`\n${name}: stopping the benchmark and cleaning up…`);
    controller.abort(new Error(`interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    log(USAGE);
    return 0;
  }
  const quick = values.quick;
  const scenarios = selectScenarios(positionals);
  const began = performance.now();
  const loadAtStart = loadAverage();
  const busyBeforeStart = await machineBusy(1000);
  const interrupt = listenForInterrupt();
  const shared = new SharedSystem();
  const outcomes: ScenarioOutcome[] = [];
  try {
    log(`Benchmark (${quick ? 'quick' : 'full'}): ${scenarios.map((s) => s.name).join(', ')}`);
    await buildDist();
    for (const scenario of scenarios) {
      if (interrupt.signal.aborted) break;
      outcomes.push(await runScenario(scenario, quick, shared, interrupt.signal));
    }
  } finally {
    await shared.stop();
    await runAllCleanups(log);
    interrupt.dispose();
  }
  if (interrupt.signal.aborted) return 130;
  const busyAfterEnd = await machineBusy(1000);
  const report = buildReport(outcomes, quick, (performance.now() - began) / 1000, { loadAtStart, busyBeforeStart, busyAfterEnd });
  const { markdown, files } = await writeReport(report);
  log(`\n${markdown}`);
  log(`Wrote ${files.join(', ')} in ${formatDuration(report.durationSeconds)}.`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  async (error: unknown) => {
    await runAllCleanups(log);
    process.stderr.write(`${error instanceof UsageError ? error.message : ((error as Error).stack ?? String(error))}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
