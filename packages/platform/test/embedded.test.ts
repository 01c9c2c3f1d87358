import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedEvent } from '../src/embedded.ts';
import { isAlive, runningPostmaster } from '../src/embedded-process.ts';
import { freePort } from '../src/net.ts';

// A cluster of its own: this file kills its postmaster.
describe('the embedded PostgreSQL after its postmaster is killed', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-embedded-'));
  const events: EmbeddedEvent[] = [];
  const cluster = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), durability: 'ephemeral', onEvent: (event) => events.push(event) });
  afterAll(async () => {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const query = async (text: string) => {
    const client = new pg.Client(cluster.connection('postgres'));
    await client.connect();
    try {
      return (await client.query<{ pid: number }>(text)).rows;
    } finally {
      await client.end();
    }
  };

  it('kills the backends it left, even one that cannot notice, and starts again', { timeout: 60_000 }, async () => {
    const held = new pg.Client(cluster.connection('postgres'));
    await held.connect();
    held.on('error', () => undefined);
    const backend = (await held.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const postmaster = (await runningPostmaster(path.join(dir, 'pgdata')))!;
    expect(postmaster).toBeGreaterThan(0);
    // A stopped backend never sees its postmaster die, and holds the shared memory for ever.
    process.kill(backend, 'SIGSTOP');
    process.kill(postmaster, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    while (!events.some((event) => event.kind === 'restarted') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events.map((event) => event.kind)).toContain('restarted');
    expect(isAlive(backend)).toBe(false);
    expect(await query('select 1 as pid')).toEqual([{ pid: 1 }]);
    await held.end().catch(() => undefined);
  });
});
