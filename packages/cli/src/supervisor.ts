import { spawn, type ChildProcess } from 'node:child_process';
import { chmod as chmodCallback, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** How to run one service process and how to tell it is ready. */
export interface ProcessSpec {
  readonly key: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Answers 200 once the service takes traffic. */
  readonly readyUrl: string;
  /** Answers 200 while the process is responsive (polled once it has been ready). */
  readonly liveUrl?: string;
  /** Where the process's stdout and stderr go. */
  readonly logFile: string;
}

export type SupervisorEvent =
  | { kind: 'ready'; key: string; ms: number; pid: number }
  | { kind: 'exited'; key: string; code: number | null; signal: string | null; restartInMs: number; attempt: number; logTail: string }
  | { kind: 'gave-up'; key: string; reason: string; logTail: string }
  | { kind: 'unresponsive'; key: string; pid: number; ms: number };

export interface SupervisorOptions {
  readonly onEvent: (event: SupervisorEvent) => void;
  /** Exit code meaning "do not restart" (configuration problem). */
  readonly noRestartExitCode: number;
  readonly readyTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
  /**
   * A ready process whose liveness check has failed (no 200 within 2 s) for this long is
   * killed (SIGKILL) and restarted like a crashed one: a hung process (deadlock, SIGSTOP, a
   * blocked event loop) serves nobody. Default 10 s; 0 turns the check off.
   */
  readonly livenessTimeoutMs?: number;
  /** How often liveness is checked (default 1 s). */
  readonly livenessIntervalMs?: number;
}

/** Default of SupervisorOptions.livenessTimeoutMs (ARCHIPELAGO_LIVENESS_TIMEOUT_MS under `archipelago start`). */
export const LIVENESS_TIMEOUT_MS = 10_000;

/** Runs service processes, restarts crashed ones with backoff, and stops them all on demand. */
export interface Supervisor {
  /** Starts every process and resolves when all are ready; rejects if one cannot become ready. */
  start(): Promise<void>;
  /** Stops every process (SIGTERM, then SIGKILL after the timeout). */
  stop(): Promise<void>;
  pids(): Record<string, number | undefined>;
}

const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
/** A process up this long is considered healthy again: its backoff starts over. */
const STABLE_MS = 30_000;

export function createSupervisor(specs: readonly ProcessSpec[], options: SupervisorOptions): Supervisor {
  const readyTimeout = options.readyTimeoutMs ?? 60_000;
  let stopping = false;
  // Until every service has been ready once, a crash fails the start (with its log) instead of
  // being restarted: a service that cannot start at all is a problem to report, not to retry.
  let allReadyOnce = false;
  const running = new Map<string, { child: ChildProcess; exited: Promise<void> }>();
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  const livenessTimeout = options.livenessTimeoutMs ?? LIVENESS_TIMEOUT_MS;
  const livenessInterval = options.livenessIntervalMs ?? 1_000;

  // Polls one ready process until it exits; kills it once it has not answered for livenessTimeout.
  const watchLiveness = (spec: ProcessSpec, child: ChildProcess) => {
    if (!spec.liveUrl || livenessTimeout <= 0) return;
    const liveUrl = spec.liveUrl;
    let lastAnswer = Date.now();
    const exited = () => stopping || child.exitCode !== null || child.signalCode !== null || running.get(spec.key)?.child !== child;
    const poll = async () => {
      if (exited()) return;
      try {
        const response = await fetch(liveUrl, { signal: AbortSignal.timeout(Math.min(2_000, livenessTimeout)) });
        await response.body?.cancel();
        if (response.ok) lastAnswer = Date.now();
      } catch {
        // no answer: counted below
      }
      if (exited()) return;
      const silentMs = Date.now() - lastAnswer;
      if (silentMs >= livenessTimeout) {
        options.onEvent({ kind: 'unresponsive', key: spec.key, pid: child.pid ?? 0, ms: silentMs });
        child.kill('SIGKILL'); // the exit handler restarts it
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        void poll();
      }, livenessInterval);
      timers.add(timer);
    };
    void poll();
  };

  const launch = (spec: ProcessSpec): ChildProcess => {
    // Logs may name users and addresses: readable by the owner only (older files are tightened too).
    const log = createWriteStream(spec.logFile, { flags: 'a', mode: 0o600 });
    log.once('open', () => chmodCallback(spec.logFile, 0o600, () => undefined));
    // The IPC channel is only a lifeline: a service exits when it closes, so a killed supervisor leaves no orphans.
    const child = spawn(process.execPath, [...spec.args], { env: spec.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const startedAt = Date.now();
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(spec.key);
        // Let the pipes drain into the log before reading its tail.
        setTimeout(() => {
          log.end();
          resolve();
          if (!stopping && allReadyOnce) void onCrash(spec, code, signal, startedAt);
        }, 50);
      });
    });
    running.set(spec.key, { child, exited });
    return child;
  };

  const onCrash = async (spec: ProcessSpec, code: number | null, signal: string | null, startedAt: number) => {
    const logTail = await tail(spec.logFile);
    if (code === options.noRestartExitCode) {
      options.onEvent({ kind: 'gave-up', key: spec.key, reason: 'it reported a configuration problem', logTail });
      return;
    }
    const attempt = Date.now() - startedAt > STABLE_MS ? 1 : (attempts.get(spec.key) ?? 0) + 1;
    attempts.set(spec.key, attempt);
    const delay = BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]!;
    options.onEvent({ kind: 'exited', key: spec.key, code, signal, restartInMs: delay, attempt, logTail });
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopping) return;
      const child = launch(spec);
      void waitReady(spec, child).then(
        (ms) => {
          options.onEvent({ kind: 'ready', key: spec.key, ms, pid: child.pid ?? 0 });
          watchLiveness(spec, child);
        },
        // Exited: the exit handler restarts it. Alive but never ready: kill it, which does the same.
        () => child.kill('SIGKILL'),
      );
    }, delay);
    timers.add(timer);
  };

  const waitReady = async (spec: ProcessSpec, child: ChildProcess): Promise<number> => {
    const started = Date.now();
    while (Date.now() - started < readyTimeout) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${spec.key} exited before it was ready`);
      try {
        const response = await fetch(spec.readyUrl, { signal: AbortSignal.timeout(1_000) });
        if (response.ok) return Date.now() - started;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${spec.key} was not ready after ${readyTimeout / 1000} s`);
  };

  return {
    async start() {
      await Promise.all(
        specs.map(async (spec) => {
          const child = launch(spec);
          try {
            const ms = await waitReady(spec, child);
            options.onEvent({ kind: 'ready', key: spec.key, ms, pid: child.pid ?? 0 });
          } catch (error) {
            const logTail = await tail(spec.logFile);
            throw new Error(`${(error as Error).message}. Last lines of ${spec.logFile}:\n${logTail}`, { cause: error });
          }
        }),
      );
      allReadyOnce = true;
      for (const spec of specs) {
        const child = running.get(spec.key)?.child;
        if (child) watchLiveness(spec, child);
      }
    },
    async stop() {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      const all = [...running.values()];
      for (const { child } of all) child.kill('SIGTERM');
      const deadline = setTimeout(() => all.forEach(({ child }) => child.kill('SIGKILL')), options.stopTimeoutMs ?? 10_000);
      await Promise.all(all.map((r) => r.exited));
      clearTimeout(deadline);
    },
    pids() {
      return Object.fromEntries(specs.map((s) => [s.key, running.get(s.key)?.child.pid]));
    },
  };
}

async function tail(file: string, lines = 8): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
}
