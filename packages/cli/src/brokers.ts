import { spawn, type ChildProcess } from 'node:child_process';
import { chmod as chmodCallback, createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort, StartupError } from '@archipelago/platform';

/** A backing server run from a system binary: loopback only, its files in one directory. */
export interface Broker {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** SIGTERM to its process group, SIGKILL after 20 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** `redis-server` without persistence on a free loopback port. */
export async function startRedisServer(dir: string): Promise<Broker> {
  const port = await freePort();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const child = launch('redis-server', ['redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no']], {}, path.join(dir, 'redis.log'));
  await waitUntil(child, 'redis-server', () => answers(port, 'PING\r\n', (reply) => reply.startsWith('+PONG')));
  return broker('redis', `redis://127.0.0.1:${port}`, child);
}

/**
 * `rabbitmq-server` (the default guest user, reachable from loopback only) on a free port, with its
 * own Erlang port mapper (epmd) on another, so nothing of it outlives stop().
 */
export async function startRabbitmqServer(dir: string): Promise<Broker> {
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  const epmd = launch('epmd', ['epmd', ['-port', String(epmdPort), '-address', '127.0.0.1']], {}, path.join(dir, 'epmd.log'));
  await waitUntil(epmd, 'epmd', () => answers(epmdPort));
  // Debian's /usr/sbin/rabbitmq-server switches to the `rabbitmq` user; the script it wraps runs as we are.
  const server = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin/rabbitmq-server' : 'rabbitmq-server';
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
  try {
    await waitUntil(child, 'rabbitmq-server', () => answers(port, Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), (reply) => reply.charCodeAt(0) === 1), 60_000);
  } catch (error) {
    await broker('epmd', '', epmd).stop();
    throw error;
  }
  const rabbit = broker('rabbitmq', `amqp://guest:guest@127.0.0.1:${port}`, child);
  return {
    ...rabbit,
    async stop() {
      await rabbit.stop();
      await broker('epmd', '', epmd).stop();
    },
  };
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

function broker(name: string, url: string, child: ChildProcess): Broker {
  const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  return {
    name,
    url,
    pid: child.pid ?? 0,
    async stop() {
      signalGroup(child, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      signalGroup(child, 'SIGKILL'); // helpers it left in its group (erl_child_setup, inet_gethost)
    },
  };
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
