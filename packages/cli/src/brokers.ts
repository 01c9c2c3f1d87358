import { spawn, type ChildProcess } from 'node:child_process';
import { chmod as chmodCallback, createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '@archipelago/platform/net';
import { StartupError } from '@archipelago/platform/startup';

/**
 * A backing server run from a system binary: loopback only, its files in one directory. One that
 * exits while it should run (a crash, a kill, an operator's restart) is started again on the same
 * port and data, with backoff: clients reconnect to the same URL.
 */
export interface Broker {
  readonly name: string;
  readonly url: string;
  /** The current process (a new one after a restart). */
  readonly pid: number;
  /** SIGTERM to its process group, SIGKILL after 20 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Told when a broker exited unexpectedly and while it is started again. */
export type BrokerEvent =
  | { kind: 'exited'; name: string; code: number | null; signal: string | null }
  | { kind: 'restart-failed'; name: string; attempt: number; retryInMs: number; message: string }
  | { kind: 'restarted'; name: string; ms: number; pid: number };

export type BrokerEvents = (event: BrokerEvent) => void;

/** `redis-server` without persistence on a free loopback port. */
export async function startRedisServer(dir: string, onEvent: BrokerEvents = () => undefined): Promise<Broker> {
  const port = await freePort();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const spawnReady = async () => {
    const child = launch('redis-server', ['redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no']], {}, path.join(dir, 'redis.log'));
    await waitUntil(child, 'redis-server', () => answers(port, 'PING\r\n', (reply) => reply.startsWith('+PONG')));
    return child;
  };
  return supervised('redis', `redis://127.0.0.1:${port}`, await spawnReady(), spawnReady, onEvent);
}

/**
 * `rabbitmq-server` (the default guest user, reachable from loopback only) on a free port, with its
 * own Erlang port mapper (epmd) on another, so nothing of it outlives stop().
 */
export async function startRabbitmqServer(dir: string, onEvent: BrokerEvents = () => undefined): Promise<Broker> {
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  const epmd = launch('epmd', ['epmd', ['-port', String(epmdPort), '-address', '127.0.0.1']], {}, path.join(dir, 'epmd.log'));
  await waitUntil(epmd, 'epmd', () => answers(epmdPort));
  // Debian's /usr/sbin/rabbitmq-server switches to the `rabbitmq` user; the script it wraps runs as we are.
  const server = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin/rabbitmq-server' : 'rabbitmq-server';
  const spawnReady = async () => {
    const child = launch('rabbitmq-server', [server, []], {
      HOME: dir, // its Erlang cookie
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_NODENAME: `archipelago-${port}@localhost`,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    }, path.join(dir, 'rabbitmq.log'));
    // Ready when it answers the AMQP 0-9-1 protocol header with a frame (connection.start).
    await waitUntil(child, 'rabbitmq-server', () => answers(port, Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), (reply) => reply.charCodeAt(0) === 1), 60_000);
    return child;
  };
  let first: ChildProcess;
  try {
    first = await spawnReady();
  } catch (error) {
    await stopChild(epmd);
    throw error;
  }
  // The node's data (durable exchanges, quorum queues) is in the mnesia directory: a restart keeps it.
  return supervised('rabbitmq', `amqp://guest:guest@127.0.0.1:${port}`, first, spawnReady, onEvent, () => stopChild(epmd));
}

// Its own process group: a terminal's Ctrl-C reaches the CLI, which stops it after the services.
function launch(name: string, [command, args]: [string, string[]], env: Record<string, string>, logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  log.once('open', () => chmodCallback(logFile, 0o600, () => undefined));
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.once('exit', () => log.end());
  child.once('error', (error) => log.write(`${name} could not be started: ${error.message}\n`));
  // If the CLI dies without stopping it (a crash), it must not live on; exit handlers are synchronous.
  const onExit = () => signalGroup(child, 'SIGKILL');
  process.once('exit', onExit);
  child.once('exit', () => process.removeListener('exit', onExit));
  return child;
}

// Watches a started broker and starts it again whenever it exits before stop().
function supervised(name: string, url: string, first: ChildProcess, spawnReady: () => Promise<ChildProcess>, onEvent: BrokerEvents, afterStop = async () => undefined as void): Broker {
  let current = first;
  let stopping = false;
  let restarting: Promise<void> | undefined;
  const restart = async () => {
    const began = Date.now();
    for (let attempt = 1; !stopping; attempt++) {
      try {
        const child = await spawnReady();
        if (stopping) return await stopChild(child);
        current = child;
        watch(child);
        onEvent({ kind: 'restarted', name, ms: Date.now() - began, pid: child.pid ?? 0 });
        return;
      } catch (error) {
        const retryInMs = Math.min(500 * 2 ** (attempt - 1), 5_000);
        onEvent({ kind: 'restart-failed', name, attempt, retryInMs, message: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, retryInMs));
      }
    }
  };
  const watch = (child: ChildProcess) =>
    child.once('exit', (code, signal) => {
      if (stopping) return;
      signalGroup(child, 'SIGKILL'); // helpers it left in its group hold its ports
      onEvent({ kind: 'exited', name, code, signal });
      restarting = restart();
    });
  watch(first);
  return {
    name,
    url,
    get pid() {
      return current.pid ?? 0;
    },
    async stop() {
      stopping = true;
      await restarting;
      await stopChild(current);
      await afterStop();
    },
  };
}

// SIGTERM to its group, SIGKILL after 20 s; then SIGKILL to helpers left in the group (erl_child_setup, inet_gethost).
async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
  signalGroup(child, 'SIGKILL');
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

async function waitUntil(child: ChildProcess, name: string, ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const failed = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`${name} could not be started (${error.message}); is it installed? (.ci/run installs the Debian package)`));
    child.once('exit', (code, signal) => resolve(`${name} exited (${signal ?? `code ${code}`}) before it was ready`));
  });
  let failure: string | undefined;
  void failed.then((message) => (failure = message));
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (failure) throw new StartupError(failure);
    if (Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
      throw new StartupError(`${name} was not ready after ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Connects to 127.0.0.1:port; with a probe, whether the first answer satisfies `check`.
function answers(port: number, probe?: string | Buffer, check: (reply: string) => boolean = () => true): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => (probe === undefined ? done(true) : socket.write(probe)));
    socket.once('data', (data: Buffer) => done(check(data.toString('latin1'))));
  });
}
