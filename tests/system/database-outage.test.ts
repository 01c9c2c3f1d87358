import { spawn } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repositoryRoot } from '@archipelago/platform';
import { freePort, testCluster, useTestDatabase } from '@archipelago/platform/testing';
import { testCredentialsEnv } from '@archipelago/platform/testing/credentials';
import { startTestIdentity } from '@archipelago/platform/testing/identity';

/** A TCP relay to the test cluster that the test can take down (cutting every connection) and bring back. */
async function databaseRelay(target: number): Promise<{ port: number; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server = createServer();
  const listen = async () => {
    server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: target });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  };
  const down = async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  return { port, down, up: listen, close: down };
}

// An external database that goes away: the service stays up, answers 503 with Retry-After, and
// serves again once the database is back, nobody acting.
describe('a service whose external database goes down', async () => {
  const database = await useTestDatabase('masterdata');
  const relay = await databaseRelay(testCluster().port);
  const identity = await startTestIdentity();
  const token = await identity.token(identity.user());
  const port = await freePort();
  const url = new URL(database.appUrl);
  url.port = String(relay.port);
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repositoryRoot, 'services/masterdata/src/main.ts')], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: url.toString(), IAM_URL: identity.url, ...testCredentialsEnv('masterdata') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  afterAll(async () => {
    child.kill('SIGTERM');
    await exited;
    await relay.close();
    await identity.close();
  });

  const labels = () =>
    fetch(`http://127.0.0.1:${port}/api/v1/labels`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  const until = async (status: number, timeoutMs: number) => {
    const started = Date.now();
    for (;;) {
      const response = await labels();
      if (response?.status === status) return response;
      if (child.exitCode !== null || Date.now() - started > timeoutMs) throw new Error(`no ${status} (last: ${response?.status}; exit ${child.exitCode}):\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  it('answers 503 with Retry-After while it is away, stays up, and recovers when it returns', { timeout: 60_000 }, async () => {
    await until(200, 30_000);
    await relay.down();
    const unavailable = await until(503, 10_000);
    expect(unavailable.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await unavailable.json()).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    // A while down, with requests failing and background work (the feed's LISTEN) retrying.
    for (let i = 0; i < 10; i++) {
      const response = await labels();
      expect(response?.status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(child.exitCode).toBeNull();
    await relay.up();
    await until(200, 15_000);
    expect(child.exitCode, output).toBeNull();
  });
});
