import { performance } from 'node:perf_hooks';

/** What a request came back with: its status, or why there was none. */
export type Outcome = number | 'timeout' | 'network';

/** One response (or failure) of the load, at its time (performance.now()). */
export interface Sample {
  readonly at: number;
  readonly outcome: Outcome;
}

/** A fault and the time it is watched for (performance.now() instants). */
export interface FaultWindow {
  readonly name: string;
  readonly startedAt: number;
  endedAt: number;
  note: string;
}

export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const isOk = (outcome: Outcome): boolean => typeof outcome === 'number' && outcome >= 200 && outcome < 300;

/** Counts per status ("201: 40, 503: 3, timeout: 1"). */
export function byStatus(responses: readonly { outcome: Outcome }[]): string {
  const counts = new Map<string, number>();
  for (const r of responses) counts.set(String(r.outcome), (counts.get(String(r.outcome)) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([status, n]) => `${status}: ${n}`).join(', ');
}

// 2xx per second between two instants.
function throughput(responses: readonly Sample[], from: number, to: number): number {
  const ok = responses.filter((r) => r.at >= from && r.at < to && isOk(r.outcome)).length;
  return ok / ((to - from) / 1000);
}

// Median of the per-second 2xx counts between two instants.
function medianThroughput(responses: readonly Sample[], from: number, to: number): number {
  const perSecond = Array.from({ length: Math.floor((to - from) / 1000) }, (_, s) => throughput(responses, from + s * 1000, from + (s + 1) * 1000)).sort((a, b) => a - b);
  return perSecond[Math.floor(perSecond.length / 2)] ?? 0;
}

// Ms after `from` from which three consecutive seconds each reach half the baseline's 2xx rate,
// once the fault has dented it (0 if it never did). Half, because the machine's noise is that large.
function recoveredAfter(responses: readonly Sample[], from: number, to: number, baseline: number): number | undefined {
  const second = (t: number) => throughput(responses, t, t + 1000);
  let dented = false;
  for (let t = from; t + 3000 <= to; t += 250) {
    if (second(t) < 0.5 * baseline) dented = true;
    else if (dented && second(t + 1000) >= 0.5 * baseline && second(t + 2000) >= 0.5 * baseline) return t - from;
    if (!dented && t - from > 5000) return 0;
  }
  return undefined;
}

// Ms after `from` of the last response in the window that was not a 2xx.
function lastErrorAfter(responses: readonly Sample[], from: number, to: number): number | undefined {
  const errors = responses.filter((r) => r.at >= from && r.at < to && !isOk(r.outcome));
  return errors.length === 0 ? undefined : errors[errors.length - 1]!.at - from;
}

/** What a fault did to the load: responses by status, last error, recovery to steady throughput. */
export interface WindowFigures {
  readonly statuses: string;
  readonly errors: number;
  readonly baselinePerSecond: number;
  /** Ms until three seconds in a row reach half the baseline again; undefined: not within the window. */
  readonly recoveryMs: number | undefined;
  readonly lastErrorMs: number | undefined;
  readonly perSecond: readonly number[];
}

export function windowFigures(responses: readonly Sample[], window: FaultWindow, baselineS: number): WindowFigures {
  const inWindow = responses.filter((r) => r.at >= window.startedAt && r.at < window.endedAt);
  const baselinePerSecond = medianThroughput(responses, window.startedAt - baselineS * 1000, window.startedAt);
  return {
    statuses: byStatus(inWindow),
    errors: inWindow.filter((r) => !isOk(r.outcome)).length,
    baselinePerSecond,
    recoveryMs: recoveredAfter(responses, window.startedAt, window.endedAt, baselinePerSecond),
    lastErrorMs: lastErrorAfter(responses, window.startedAt, window.endedAt),
    perSecond: Array.from({ length: Math.floor((window.endedAt - window.startedAt) / 1000) }, (_, s) => throughput(responses, window.startedAt + s * 1000, window.startedAt + (s + 1) * 1000)),
  };
}

/** The printed lines of one fault window. */
export function describeWindow(index: number, window: FaultWindow, figures: WindowFigures): string[] {
  const { recoveryMs, lastErrorMs } = figures;
  return [
    `${index + 1}. ${window.name}: ${window.note}`,
    `   responses in the ${((window.endedAt - window.startedAt) / 1000).toFixed(0)} s after the fault: ${figures.statuses}`,
    `   last error ${lastErrorMs === undefined ? 'none' : `${(lastErrorMs / 1000).toFixed(1)} s after the fault`}; throughput before: median ${figures.baselinePerSecond.toFixed(0)}/s of 2xx; ` +
      `back to ≥ 50 % of it (3 s in a row) after ${recoveryMs === undefined ? 'NOT within the window' : `${(recoveryMs / 1000).toFixed(1)} s`}`,
    `   2xx per second from the fault on: ${figures.perSecond.map((n) => n.toFixed(0)).join(' ')}`,
  ];
}
