import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../net.ts';

// The Debian package's real scripts; /usr/sbin/rabbitmq-server would switch to the rabbitmq user.
const BIN = '/usr/lib/rabbitmq/bin';

/** Whether `rabbitmq-server` is installed (`.ci/run` installs it; a developer may not have it). */
export const rabbitmqInstalled = existsSync(path.join(BIN, 'rabbitmq-server'));

/**
 * A real RabbitMQ node for a test file: loopback only, its own ports, Erlang cookie, epmd and
 * temporary directory, no plugins. `restart()` stops and starts it on the same data (durable
 * queues survive); `ctl()` runs `rabbitmqctl` against it.
 */
export interface TestRabbitMq {
  readonly url: string;
  restart(): Promise<void>;
  ctl(...args: string[]): string;
  stop(): Promise<void>;
}

export async function startRabbitMq(): Promise<TestRabbitMq> {
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-rabbitmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const node = `rabbit-${path.basename(dir).slice(-6).toLowerCase()}@localhost`;
  await mkdir(path.join(dir, 'home'));
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(path.join(dir, 'rabbitmq.conf'), [`listeners.tcp.1 = 127.0.0.1:${port}`, 'disk_free_limit.absolute = 10MB', 'log.console = false', 'log.file.level = warning', ''].join('\n'));
  const env = {
    ...process.env,
    HOME: path.join(dir, 'home'),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
  };
  let child: ChildProcess | undefined;
  let exited = Promise.resolve();

  const start = async () => {
    const started = spawn(path.join(BIN, 'rabbitmq-server'), [], { env, stdio: 'ignore' });
    child = started;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    for (let attempt = 0; ; attempt++) {
      if (await amqpReady(port)) return;
      if (attempt > 600 || started.exitCode !== null) {
        started.kill('SIGKILL');
        throw new Error(`rabbitmq-server did not start on 127.0.0.1:${port} (logs in ${env.RABBITMQ_LOG_BASE})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const halt = async () => {
    child?.kill('SIGTERM');
    await exited;
    child = undefined;
  };
  await start();
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    async restart() {
      await halt();
      await start();
    },
    ctl: (...args) => {
      const result = spawnSync(path.join(BIN, 'rabbitmqctl'), ['-n', node, ...args], { env, encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${result.stderr}`);
      return result.stdout;
    },
    async stop() {
      await halt();
      // The node started its own epmd on a port of its own; it outlives the node otherwise.
      spawnSync('epmd', ['-port', String(epmdPort), '-kill'], { env, stdio: 'ignore' });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// The broker answers the AMQP protocol header with its connection.start frame once it is ready.
function amqpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ready: boolean) => {
      socket.destroy();
      resolve(ready);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
    socket.once('data', (data) => done(data[0] === 1));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
