import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, it } from 'vitest';
import { alive, waitUntil } from './processes.ts';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/supervisor-process.ts');

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
      await waitUntil(() => /service pid \d+/.test(output), 30_000, 'the supervisor never started the service');
      const pid = Number(/service pid (\d+)/.exec(output)![1]);
      leftovers.push(pid, supervisor.pid!);
      // It has read its configuration and is retrying its database: in its start-up, not yet listening.
      await waitUntil(async () => (await readFile(logFile, 'utf8').catch(() => '')).includes('database not reachable yet'), 45_000, 'the service never retried its database');
      supervisor.kill('SIGKILL');
      // Without the lifeline it would retry its database for minutes (100 attempts), orphaned.
      await waitUntil(() => !alive(pid), 20_000, `service ${pid} outlived its killed supervisor`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
