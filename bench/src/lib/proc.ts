import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';

/** Reads of /proc (Linux): process trees, CPU time and memory of the processes under test. */

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime of the process itself, in clock ticks. */
  readonly ownTicks: number;
  /** cutime + cstime: time of its children that have exited and been waited for. */
  readonly reapedChildTicks: number;
}

export interface Memory {
  readonly rssBytes: number;
  /** Proportional set size: shared pages divided among the processes sharing them. */
  readonly pssBytes: number | null;
}

const clockTicksPerSecond = readClockTicks();

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

export function ticksToSeconds(ticks: number): number {
  return ticks / clockTicksPerSecond;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // the process has gone, or the file does not exist here
  }
}

export function readStat(pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name is in parentheses and may contain spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  const field = (index: number): number => Number(fields[index]);
  // fields[0] is field 3 of proc(5) (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
  return {
    pid,
    ppid: field(1),
    comm: text.slice(text.indexOf('(') + 1, close),
    ownTicks: field(11) + field(12),
    reapedChildTicks: field(13) + field(14),
  };
}

export function readMemory(pid: number): Memory | undefined {
  const rollup = readText(`/proc/${pid}/smaps_rollup`);
  if (rollup !== undefined) {
    const rss = kilobytes(rollup, 'Rss');
    const pss = kilobytes(rollup, 'Pss');
    if (rss !== undefined) return { rssBytes: rss * 1024, pssBytes: pss === undefined ? null : pss * 1024 };
  }
  const status = readText(`/proc/${pid}/status`);
  const rss = status === undefined ? undefined : kilobytes(status, 'VmRSS');
  return rss === undefined ? undefined : { rssBytes: rss * 1024, pssBytes: null };
}

function kilobytes(text: string, key: string): number | undefined {
  const match = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
  return match ? Number(match[1]) : undefined;
}

export function readCommandLine(pid: number): string {
  return (readText(`/proc/${pid}/cmdline`) ?? '').split('\0').join(' ').trim();
}

/** `root` and every live process below it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat.pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree.filter((pid) => readStat(pid) !== undefined);
}

/** Total memory of some processes; PSS is null when any of them does not report it. */
export function totalMemory(pids: readonly number[]): Memory {
  let rssBytes = 0;
  let pssBytes: number | null = 0;
  for (const pid of pids) {
    const memory = readMemory(pid);
    if (!memory) continue;
    rssBytes += memory.rssBytes;
    pssBytes = pssBytes === null || memory.pssBytes === null ? null : pssBytes + memory.pssBytes;
  }
  return { rssBytes, pssBytes };
}

const PAGE_BYTES = 4096;

/**
 * Physical memory of some processes with every page counted once, however many of them map it
 * (PostgreSQL's shared buffers, the `node` binary's code): the page frames /proc/<pid>/pagemap
 * names for each process's resident pages. Null when page frame numbers cannot be read (only
 * root, CAP_SYS_ADMIN, sees them). Unlike PSS, the figure does not depend on what else runs on
 * the machine: a page shared with a process outside `pids` counts whole.
 */
export function distinctMemoryBytes(pids: readonly number[]): number | null {
  const frames = new Set<number>();
  for (const pid of pids) {
    const maps = readText(`/proc/${pid}/smaps`);
    if (maps === undefined) continue;
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/pagemap`, 'r');
    } catch {
      continue; // the process has gone
    }
    try {
      for (const range of residentRanges(maps)) {
        const pages = (range.end - range.start) / PAGE_BYTES;
        const entries = Buffer.alloc(pages * 8);
        readSync(fd, entries, 0, entries.length, (range.start / PAGE_BYTES) * 8);
        for (let i = 0; i < pages; i++) {
          const high = entries.readUInt32LE(i * 8 + 4);
          if ((high & 0x8000_0000) === 0) continue; // not present
          // Bits 0–54 are the page frame number; it reads as 0 without the privilege.
          const frame = (high & 0x7f_ffff) * 2 ** 32 + entries.readUInt32LE(i * 8);
          if (frame === 0) return null;
          frames.add(frame);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
  return frames.size * PAGE_BYTES;
}

/** The mappings of a process (from its smaps) that have resident pages. */
function residentRanges(smaps: string): { start: number; end: number }[] {
  const ranges: { start: number; end: number; rss: number }[] = [];
  for (const line of smaps.split('\n')) {
    const mapping = line.match(/^([0-9a-f]+)-([0-9a-f]+) /);
    if (mapping) ranges.push({ start: parseInt(mapping[1]!, 16), end: parseInt(mapping[2]!, 16), rss: 0 });
    else if (line.startsWith('Rss:') && ranges.length > 0) ranges[ranges.length - 1]!.rss = Number(line.match(/(\d+) kB/)?.[1] ?? 0);
  }
  return ranges.filter((range) => range.rss > 0 && range.end <= 2 ** 47); // not [vsyscall], above user space
}

/**
 * CPU seconds consumed by a process tree so far: each live process's own time plus the time of
 * the children it has reaped (initdb, short-lived postgres backends), so nothing is counted twice.
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    const stat = readStat(pid);
    if (stat) ticks += stat.ownTicks + stat.reapedChildTicks;
  }
  return ticksToSeconds(ticks);
}

/** Measures the CPU time some processes use between construction and `read()`. */
export class CpuMeter {
  private readonly startTicks: Map<number, number>;
  private readonly startedAt = performance.now();

  constructor(private readonly pids: () => readonly number[]) {
    this.startTicks = new Map(pids().map((pid) => [pid, readStat(pid)?.ownTicks ?? 0]));
  }

  /** CPU seconds used since construction, and the same as a percentage of one core. */
  read(): { cpuSeconds: number; percentOfOneCore: number } {
    let ticks = 0;
    // A process started during the measurement (a new postgres backend) counts from zero.
    for (const pid of this.pids()) ticks += (readStat(pid)?.ownTicks ?? 0) - (this.startTicks.get(pid) ?? 0);
    const cpuSeconds = ticksToSeconds(ticks);
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    return { cpuSeconds, percentOfOneCore: (100 * cpuSeconds) / wallSeconds };
  }
}

/** Busy share of all CPUs (0–1) over `ms` milliseconds, from /proc/stat: shows other work on the machine. */
export async function machineBusy(ms: number): Promise<number> {
  const read = (): { idle: number; total: number } => {
    const fields = (readText('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …; idle time is idle + iowait.
    return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
  };
  const before = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = read();
  const total = after.total - before.total;
  return total > 0 ? 1 - (after.idle - before.idle) / total : 0;
}

/** Which of `pids` holds the TCP socket bound to 127.0.0.1:`localPort` (e.g. the client end of a database session). */
export function tcpSocketOwner(localPort: number, pids: readonly number[]): number | undefined {
  const hexPort = localPort.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (readText(table) ?? '').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`)) inodes.add(fields[9]!);
    }
  }
  return pids.find((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
          return inodes.has(target.slice('socket:['.length, -1));
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}
