import type { RunningSystem } from './lib/system.ts';

/** A goal from the issue: the figure must be at most (`<=`) or at least (`>=`) the value. */
export interface Goal {
  readonly comparison: '<=' | '>=';
  readonly value: number;
}

/** What a figure is compared with in the same run; the report shows value / baseline. */
export interface BaselineRef {
  readonly name: string;
  readonly value: number;
}

/** One reported number. `value: null` means it could not be measured (capability not built yet). */
export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly value: number | null;
  readonly unit: string;
  readonly goal?: Goal;
  readonly baseline?: BaselineRef;
  /** A figure that is itself a baseline for others (pg writes, bare node:http). */
  readonly isBaseline?: boolean;
  readonly note?: string;
}

/** Latency of one target, second by second, for the chart. */
export interface LatencySeries {
  readonly name: string;
  readonly points: readonly SecondPoint[];
}

export interface SecondPoint {
  readonly second: number;
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ScenarioResult {
  readonly figures: readonly Figure[];
  /** Everything else worth keeping in latest.json (per-run numbers, breakdowns). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly series?: readonly LatencySeries[];
  readonly notes?: readonly string[];
}

export interface ScenarioContext {
  readonly quick: boolean;
  /** Aborted when the scenario runs past its time limit or the bench is interrupted. */
  readonly signal: AbortSignal;
  /** The system shared by the scenarios that measure a running system, started on first use. */
  system(): Promise<RunningSystem>;
  log(message: string): void;
}

/** One file per scenario in scenarios/, each exporting one of these; scenarios/index.ts lists them. */
export interface Scenario {
  /** The name given on the command line: `npm run bench -- <name>`. */
  readonly name: string;
  readonly title: string;
  /** False while the capability it measures does not exist; its row then says "not built yet". */
  readonly built: boolean;
  /** Hard time limit in seconds, after which the scenario is aborted and reported as failed. */
  readonly timeLimitS: { readonly quick: number; readonly full: number };
  /** Run only when named on the command line (a part of another scenario, to work on it alone). */
  readonly onlyWhenNamed?: boolean;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}

/** A scenario whose capability is not built yet: one row that says so, and why. */
export function notBuilt(name: string, title: string, reason: string): Scenario {
  return {
    name,
    title,
    built: false,
    timeLimitS: { quick: 1, full: 1 },
    run: async () => ({ figures: [{ key: `${name}.not-built`, label: title, value: null, unit: '', note: `not built yet (${reason})` }] }),
  };
}
