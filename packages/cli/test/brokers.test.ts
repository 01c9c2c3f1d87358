import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { redisInstalled } from '@archipelago/platform/testing/redis';
import { startRedisServer, type Broker, type BrokerEvent } from '../src/brokers.ts';
import { alive } from './processes.ts';

const ping = (url: string) =>
  new Promise<string>((resolve) => {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.once('error', (error) => resolve(error.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data: Buffer) => {
      socket.destroy();
      resolve(data.toString().trim());
    });
  });

// `start:distributed` starts the brokers; one that dies while the system runs comes back on the same URL.
// In CI (`.ci/run` installs redis-server) a missing binary fails the file; elsewhere it is skipped.
describe.skipIf(!redisInstalled && !process.env.CI)('a broker of start --distributed', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-brokers-'));
  const events: BrokerEvent[] = [];
  let broker: Broker | undefined;
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is started again on the same port after it was killed, and stop() stops the new process', async () => {
    broker = await startRedisServer(path.join(dir, 'redis'), (event) => events.push(event));
    const first = broker.pid;
    expect(await ping(broker.url)).toBe('+PONG');
    process.kill(first, 'SIGKILL');
    for (let i = 0; i < 200 && !events.some((e) => e.kind === 'restarted'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map((e) => e.kind)).toEqual(['exited', 'restarted']);
    expect(events[0]).toMatchObject({ name: 'redis', signal: 'SIGKILL' });
    expect(broker.pid).not.toBe(first);
    expect(await ping(broker.url)).toBe('+PONG');
    const second = broker.pid;
    await broker.stop();
    expect(alive(second)).toBe(false);
    expect(events).toHaveLength(2); // a stop is not a crash
  });
});
