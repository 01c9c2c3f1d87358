import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { distinctMemoryBytes, readMemory } from '../../bench/src/lib/proc.ts';

const asRoot = process.getuid?.() === 0;
const children: ChildProcess[] = [];

/** An idle Node process (its memory stays put while it is measured). */
async function idleNode(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("up"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout, 'data');
  return child.pid!;
}

afterAll(() => children.forEach((child) => child.kill()));

describe('memory of a set of processes, each page counted once', () => {
  it.runIf(asRoot)("counts the node binary's pages two Node processes share once, unlike summed RSS", async () => {
    const pids = [await idleNode(), await idleNode()];
    const rss = pids.map((pid) => readMemory(pid)!.rssBytes);
    const one = distinctMemoryBytes([pids[0]!]);
    expect(distinctMemoryBytes([pids[0]!, pids[0]!])).toBe(one); // a process listed twice adds nothing
    const both = distinctMemoryBytes(pids)!;
    expect(both).toBeGreaterThanOrEqual(Math.max(...rss) * 0.9);
    expect(both).toBeLessThan(rss[0]! + rss[1]! - 10 * 2 ** 20); // the binary's code, shared, counts once
  });

  it.skipIf(asRoot)('is unknown without root (page frames read as 0)', () => {
    expect(distinctMemoryBytes([process.pid])).toBeNull();
  });
});
