import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

// The embedded postmaster as a process: is it alive, which one is ours, how it is stopped.

/** SIGINT (fast shutdown), then waits; escalates to SIGQUIT (immediate) after 30 s. */
export async function stopPostmaster(pid: number, child?: ChildProcess): Promise<void> {
  if (!isAlive(pid)) return;
  const exited = child
    ? new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
    : waitForExit(pid);
  process.kill(pid, 'SIGINT');
  const timer = setTimeout(() => isAlive(pid) && process.kill(pid, 'SIGQUIT'), 30_000);
  await exited;
  clearTimeout(timer);
}

async function waitForExit(pid: number): Promise<void> {
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

// The postmaster named in the data directory's pid file, if it is alive and really ours.
export async function runningPostmaster(pgdata: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path.join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return command.includes('postgres') && command.includes(pgdata) ? pid : undefined;
  } catch {
    return undefined; // no pid file, or its process is gone (PostgreSQL cleans up a stale file itself)
  }
}
