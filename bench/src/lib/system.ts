import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { envPrefix, loadRegistry } from '@archipelago/registry';
import { freePort } from '@archipelago/platform';
import { registerCleanup } from './cleanup.ts';
import { processTree, readStat } from './proc.ts';

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = path.join(REPOSITORY_ROOT, 'dist/packages/cli/src/main.mjs');
/** The flags `npm start` runs the CLI with (root package.json). */
export const NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1'];
export const SERVICE_KEYS: readonly string[] = loadRegistry(undefined, {}).services.map((s) => s.key);
export const ALL_READY = /All (\d+) services?(?: \(\d+ processes\))? ready in/;
const SERVICE_READY = /✓ (\S+) +http:\/\/127\.0\.0\.1:(\d+) .*\(pid (\d+)\)/g;

/** A line of CLI output and when it arrived, in ms since the CLI was spawned. */
interface Line {
  readonly text: string;
  readonly atMs: number;
}

export interface Sighting {
  readonly match: RegExpMatchArray;
  readonly atMs: number;
}

export interface Ports {
  readonly postgres: number;
  readonly services: ReadonlyMap<string, number>;
}

/** Compiles the CLI and services into dist/, as `npm start` does before starting. */
export async function buildDist(): Promise<void> {
  const child = spawn(process.execPath, [path.join(REPOSITORY_ROOT, 'packages/cli/build.mjs')], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`node packages/cli/build.mjs exited with ${code}`);
}

/** How `archipelago start` is run: as `npm start`, or as `npm run start:distributed`. */
export interface StartOptions {
  readonly distributed?: boolean;
  /** More variables for the CLI (they win over the bench's). */
  readonly env?: Readonly<Record<string, string>>;
}

// A service's n-th instance listens on its port + 100·(n−1) (the distributed topology, or
// ARCHIPELAGO_INSTANCES), and the distributed clusters on the PostgreSQL port + 1…: those must be free too.
async function freePorts(distributed: boolean): Promise<Ports> {
  const services = new Map<string, number>();
  for (const key of SERVICE_KEYS) services.set(key, await freeBase([0, 100]));
  return { postgres: await freeBase(distributed ? SERVICE_KEYS.map((_, i) => i) : [0]), services };
}

async function freeBase(offsets: readonly number[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    if ((await Promise.all(offsets.map((offset) => canListen(port + offset)))).every(Boolean)) return port;
  }
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** The administrator the bench signs in as (the seed creates it with this password). */
export const BENCH_ADMIN = { email: 'admin@example.com', password: 'bench administrator password' };

/**
 * The CLI's environment: ours, without external database URLs, plus the bench's ports, data
 * directory and administrator. The gateway's rate limits are raised out of the way (they are
 * still counted on every request): all load comes from one address and one user.
 */
function cliEnvironment(dataDir: string, ports: Ports, extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...extra,
    LOG_LEVEL: 'warn',
    ARCHIPELAGO_DATA_DIR: dataDir,
    ARCHIPELAGO_PG_PORT: String(ports.postgres),
    ADMIN_EMAIL: BENCH_ADMIN.email,
    ADMIN_PASSWORD: BENCH_ADMIN.password,
    RATE_LIMIT_PER_IP: '1000000000',
    RATE_LIMIT_PER_USER: '1000000000',
  };
  for (const name of Object.keys(env)) if (name.endsWith('_DATABASE_URL')) delete env[name];
  for (const [key, port] of ports.services) env[`${envPrefix(key)}_PORT`] = String(port);
  return env;
}

/**
 * `archipelago start` on free loopback ports and a given data directory, as a user runs it. Its
 * output is kept line by line with arrival times, so readiness is timed to the millisecond.
 */
export class RunningSystem {
  readonly ports: Ports;
  readonly dataDir: string;
  private readonly child: ChildProcess;
  private readonly spawnedAt: number;
  private readonly lines: Line[] = [];
  private readonly partial = { stdout: '', stderr: '' };
  private readonly listeners = new Set<() => void>();
  private readonly exited: Promise<number | null>;
  private readonly unregister: () => Promise<void>;
  private stopping: Promise<{ code: number | null; stopMs: number }> | undefined;

  private constructor(dataDir: string, ports: Ports, options: StartOptions) {
    this.dataDir = dataDir;
    this.ports = ports;
    this.spawnedAt = performance.now();
    const args = [...NODE_FLAGS, CLI, 'start', ...(options.distributed ? ['--distributed'] : [])];
    this.child = spawn(process.execPath, args, { env: cliEnvironment(dataDir, ports, options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.receive('stdout', chunk));
    this.child.stderr!.on('data', (chunk: Buffer) => this.receive('stderr', chunk));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        resolve(code ?? (signal ? -1 : null));
        this.notify();
      });
      this.child.once('error', () => resolve(-1));
    });
    this.unregister = registerCleanup(async () => void (await this.shutDown()));
  }

  /** Spawns the CLI; resolves once every service is ready, with the time that took from spawn. */
  static async start(dataDir: string, signal: AbortSignal, options: StartOptions = {}): Promise<{ system: RunningSystem; readyMs: number }> {
    const system = new RunningSystem(dataDir, await freePorts(options.distributed ?? false), options);
    try {
      const ready = await system.waitFor(ALL_READY, signal);
      return { system, readyMs: ready.atMs };
    } catch (error) {
      await system.stop();
      throw error;
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  url(key: string): string {
    return `http://127.0.0.1:${this.ports.services.get(key)}`;
  }

  /** Service pids as the CLI printed them (the latest one of each service). */
  servicePids(): Map<string, number> {
    const pids = new Map<string, number>();
    for (const match of this.output().matchAll(SERVICE_READY)) pids.set(match[1]!, Number(match[3]));
    return pids;
  }

  /** The pid the CLI last printed for a broker (`Redis`, `RabbitMQ`): at its start or its restart. */
  brokerPid(name: 'Redis' | 'RabbitMQ'): number | undefined {
    const seen = [...this.output().matchAll(new RegExp(`${name} (?:started )?on \\S+ \\(pid (\\d+)\\)|✓ ${name} restarted in [\\d.]+ s \\(pid (\\d+)\\)`, 'g'))];
    const last = seen.at(-1);
    return last ? Number(last[1] ?? last[2]) : undefined;
  }

  /** The CLI and every process below it: services, PostgreSQL's postmaster and its backends. */
  tree(): number[] {
    return processTree(this.pid);
  }

  /** The postmaster (the CLI's child whose command name is `postgres`) and its backends. */
  postgresTree(): number[] {
    const postmaster = this.tree().find((pid) => {
      const stat = readStat(pid);
      return stat?.ppid === this.pid && stat.comm === 'postgres';
    });
    return postmaster === undefined ? [] : processTree(postmaster);
  }

  output(): string {
    return this.lines.map((line) => line.text).join('\n');
  }

  /** The first output line matching `pattern`, waiting for it if it has not arrived yet. */
  waitFor(pattern: RegExp, signal: AbortSignal, timeoutMs = 180_000): Promise<Sighting> {
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.listeners.delete(check);
        outcome();
      };
      const check = (): void => {
        const line = this.lines.find((l) => pattern.test(l.text));
        if (line) finish(() => resolve({ match: line.text.match(pattern)!, atMs: line.atMs }));
        else if (this.child.exitCode !== null || this.child.signalCode !== null) finish(() => reject(this.failure(`the CLI exited before printing ${pattern}`)));
      };
      const onAbort = (): void => finish(() => reject(this.failure(`aborted while waiting for ${pattern}`)));
      const timer = setTimeout(() => finish(() => reject(this.failure(`timed out after ${timeoutMs / 1000} s waiting for ${pattern}`))), timeoutMs);
      signal.addEventListener('abort', onAbort);
      this.listeners.add(check);
      check();
    });
  }

  /** SIGINT, as Ctrl-C; resolves with the exit code and how long shutting down took. Idempotent. */
  async stop(): Promise<{ code: number | null; stopMs: number }> {
    const result = await this.shutDown();
    await this.unregister();
    return result;
  }

  private shutDown(): Promise<{ code: number | null; stopMs: number }> {
    this.stopping ??= (async () => {
      const began = performance.now();
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, 60_000, 'timeout').unref());
      const code = await Promise.race([this.exited, timeout]);
      if (code === 'timeout') {
        this.killTree();
        return { code: await this.exited, stopMs: performance.now() - began };
      }
      return { code, stopMs: performance.now() - began };
    })();
    return this.stopping;
  }

  /** Last resort when the CLI does not stop: SIGKILL to it and everything below it. */
  private killTree(): void {
    for (const pid of this.tree().reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  private receive(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const atMs = performance.now() - this.spawnedAt;
    const parts = (this.partial[stream] + chunk.toString()).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const text of parts) this.lines.push({ text, atMs });
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private failure(message: string): Error {
    const tail = this.lines.slice(-30).map((l) => l.text).join('\n');
    return new Error(`${message}. Last CLI output:\n${tail}`);
  }
}
