import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
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

/**
 * Kills what is left of a dead postmaster on this data directory: its backends and auxiliary
 * processes, which hold the shared memory a new postmaster needs. They are found by their
 * working directory (every PostgreSQL process runs in its data directory), not by process
 * group: backends call setsid(), so a signal to the postmaster's group reaches none of them.
 * Waits up to 2 s for them to be gone.
 */
export async function killLeftBackends(pgdata: string): Promise<number> {
  const home = await realpath(pgdata).catch(() => pgdata);
  const left: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd !== home) continue;
    try {
      process.kill(pid, 'SIGKILL');
      left.push(pid);
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + 2_000;
  while (left.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return left.length;
}
