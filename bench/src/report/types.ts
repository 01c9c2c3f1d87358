import type { Figure, ScenarioResult } from '../scenario.ts';

export type ScenarioStatus = 'measured' | 'not built yet' | 'failed';

export interface ScenarioOutcome {
  readonly name: string;
  readonly title: string;
  readonly status: ScenarioStatus;
  readonly seconds: number;
  readonly result?: ScenarioResult;
  readonly error?: string;
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGB: number;
  readonly node: string;
  readonly platform: string;
  readonly kernel: string;
  /** 1-minute load average when the bench started and ended (lags: includes the minute before). */
  readonly loadAverage: { readonly atStart: number; readonly atEnd: number };
  /**
   * Busy share of all CPUs (%) in the second before the bench started and the second after it had
   * stopped everything: other work on the machine then skews the figures.
   */
  readonly otherCpuPercent: { readonly beforeStart: number; readonly afterEnd: number };
}

export interface GoalCheck {
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  readonly goal: NonNullable<Figure['goal']>;
  readonly met: boolean;
}

export interface Report {
  readonly date: string;
  readonly commit: string;
  readonly uncommittedChanges: boolean;
  readonly quick: boolean;
  readonly scenariosRun: readonly string[];
  readonly machine: Machine;
  readonly durationSeconds: number;
  readonly goals: readonly GoalCheck[];
  readonly baselines: readonly Figure[];
  readonly scenarios: readonly ScenarioOutcome[];
}
