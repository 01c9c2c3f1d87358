import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { Figure } from '../scenario.ts';
import { round } from '../lib/stats.ts';
import { REPOSITORY_ROOT } from '../lib/system.ts';
import type { GoalCheck, Machine, Report, ScenarioOutcome } from './types.ts';

export function goalMet(figure: Figure): boolean | undefined {
  if (!figure.goal || figure.value === null) return undefined;
  return figure.goal.comparison === '<=' ? figure.value <= figure.goal.value : figure.value >= figure.goal.value;
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPOSITORY_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

function commit(): { commit: string; uncommittedChanges: boolean } {
  let hash = 'unknown';
  try {
    hash = git(['rev-parse', 'HEAD']);
    git(['diff-index', '--quiet', 'HEAD', '--']); // read-only; exits 1 when tracked files differ
    return { commit: hash, uncommittedChanges: false };
  } catch {
    return { commit: hash, uncommittedChanges: hash !== 'unknown' };
  }
}

export interface Surroundings {
  readonly loadAtStart: number;
  readonly busyBeforeStart: number;
  readonly busyAfterEnd: number;
}

function machine(surroundings: Surroundings): Machine {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    loadAverage: { atStart: surroundings.loadAtStart, atEnd: loadAverage() },
    otherCpuPercent: { beforeStart: round(100 * surroundings.busyBeforeStart, 1), afterEnd: round(100 * surroundings.busyAfterEnd, 1) },
  };
}

/** The 1-minute load average now, to record with the report. */
export function loadAverage(): number {
  return round(os.loadavg()[0] ?? 0, 2);
}

export function buildReport(outcomes: readonly ScenarioOutcome[], quick: boolean, durationSeconds: number, surroundings: Surroundings): Report {
  const figures = outcomes.flatMap((outcome) => outcome.result?.figures ?? []);
  const goals: GoalCheck[] = figures.flatMap((f) => (f.goal && f.value !== null ? [{ key: f.key, label: f.label, value: f.value, unit: f.unit, goal: f.goal, met: goalMet(f)! }] : []));
  return {
    date: new Date().toISOString(),
    ...commit(),
    quick,
    scenariosRun: outcomes.map((o) => o.name),
    machine: machine(surroundings),
    durationSeconds: Math.round(durationSeconds),
    goals,
    baselines: figures.filter((f) => f.isBaseline),
    scenarios: outcomes,
  };
}
