import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/supervisor-process.ts');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

describe('a service under a supervisor that is killed', () => {
  const leftovers: number[] = [];
  afterAll(() => leftovers.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));

  it('exits even while it is still starting (waiting for its database)', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-supervisor-'));
    const logFile = path.join(dir, 'masterdata.log');
    try {
      const supervisor = spawn(process.execPath, ['--import', 'tsx', fixture, logFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      supervisor.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      expect(await waitUntil(() => /service pid \d+/.test(output), 30_000), output).toBe(true);
      const pid = Number(/service pid (\d+)/.exec(output)![1]);
      leftovers.push(pid, supervisor.pid!);
      // It has read its configuration and is retrying its database: in its start-up, not yet listening.
      expect(await waitUntil(async () => (await readFile(logFile, 'utf8').catch(() => '')).includes('database not reachable yet'), 45_000)).toBe(true);
      supervisor.kill('SIGKILL');
      // Without the lifeline it would retry its database for minutes (100 attempts), orphaned.
      expect(await waitUntil(() => !alive(pid), 20_000)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
