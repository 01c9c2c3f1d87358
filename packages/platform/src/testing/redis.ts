import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../net.ts';

/** A real Redis server for a test file: loopback only, no persistence, its own temporary directory. */
export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/** Whether `redis-server` is installed (`.ci/run` installs it; a developer may not have it). */
export const redisInstalled = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** A real Redis server, stopped by `stop()`; `restart()` stops it and starts an empty one on the same port (an outage). */
export interface RestartableRedis extends TestRedis {
  restart(options?: { downMs?: number }): Promise<void>;
  /** Stops it, keeping the port for `start()`. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(): Promise<RestartableRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited = Promise.resolve();
  const start = async () => {
    const started = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    child = started;
    for (let attempt = 0; ; attempt++) {
      if (await accepts(port)) return;
      if (attempt > 100 || started.exitCode !== null) {
        started.kill('SIGKILL');
        throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    child?.kill('SIGTERM');
    await exited;
    child = undefined;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    async restart(options = {}) {
      await kill();
      await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 0));
      await start();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
