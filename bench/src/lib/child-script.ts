import { spawn } from 'node:child_process';
import path from 'node:path';
import { registerCleanup } from './cleanup.ts';
import { NODE_FLAGS, REPOSITORY_ROOT } from './system.ts';

export interface ChildScript {
  readonly pid: number;
  /** Resolves with the first line matching `pattern` (or rejects when the child exits first). */
  waitFor(pattern: RegExp, signal: AbortSignal): Promise<string>;
  stop(): Promise<void>;
}

/** Runs a bench script (bench/src/<script>) in its own Node process; every stdout line goes to `onLine`. */
export function startChildScript(script: string, args: readonly string[], onLine: (line: string) => void = () => undefined): ChildScript {
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', path.join(REPOSITORY_ROOT, 'bench/src', script), ...args], { cwd: REPOSITORY_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      onLine(line);
      if (!line.startsWith('done ')) lines.push(line);
    }
    for (const listener of [...listeners]) listener();
  });
  const stop = registerCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  return {
    pid: child.pid ?? 0,
    waitFor: (pattern, signal) =>
      new Promise((resolve, reject) => {
        const finish = (outcome: () => void) => {
          listeners.delete(check);
          signal.removeEventListener('abort', onAbort);
          outcome();
        };
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line !== undefined) finish(() => resolve(line));
        };
        const onAbort = () => finish(() => reject(new Error(`aborted waiting for ${pattern} from ${script}`)));
        signal.addEventListener('abort', onAbort, { once: true });
        void exited.then((code) => finish(() => reject(new Error(`${script} exited with ${code} before printing ${pattern}`))));
        listeners.add(check);
        check();
      }),
    stop,
  };
}
