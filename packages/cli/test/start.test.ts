import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envPrefix, loadRegistry } from '@archipelago/registry';
import { repositoryRoot, type HttpServer } from '@archipelago/platform';
import { serviceCredentialsFromEnv } from '@archipelago/platform/internal-auth';
import { freePort } from '@archipelago/platform/testing';
import { buildApp as buildGateway } from '../../../services/gateway/src/app.ts';
import { gatewayUpstreams } from '../../../services/gateway/src/upstreams.ts';
import { build } from '../build.mjs';
import { cliKeyring } from '../src/credentials.ts';
import { alive, waitUntil } from './processes.ts';

const CLI = path.join(repositoryRoot, 'dist/packages/cli/src/main.mjs');
const services = loadRegistry(undefined, {}).services;
const allReady = new RegExp(`All ${services.length} services ready in`);

const launched: StartedCli[] = [];

/** `npm start` as a user runs it, on its own ports and data directory. */
class StartedCli {
  output = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(env: Record<string, string>, options: { uid?: number; args?: readonly string[] } = {}) {
    this.child = spawn(process.execPath, [CLI, 'start', ...(options.args ?? [])], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, like a command in a terminal
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    launched.push(this);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(pattern: RegExp, timeoutMs = 90_000): Promise<RegExpMatchArray> {
    const started = Date.now();
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null) throw new Error(`CLI exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${pattern}:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** SIGSTOP/SIGCONT to the CLI alone: its services run on, unsupervised meanwhile. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }

  /** Ctrl-C in a terminal: the signal goes to the whole foreground process group. */
  interrupt(): Promise<number | null> {
    process.kill(-this.child.pid!, 'SIGINT');
    return this.exited;
  }
}

async function portsEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = { ARCHIPELAGO_PG_PORT: String(await freePort()) };
  for (const service of services) env[`${envPrefix(service.key)}_PORT`] = String(await freePort());
  return env;
}

beforeAll(async () => {
  await build();
});

describe('npm start', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    // A failed assertion must not leave a system running.
    await Promise.all(launched.filter((cli) => cli.running).map((cli) => cli.stop('SIGINT')));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-start-'));
    await chmod(dir, 0o755); // run as root, PostgreSQL's own user must be able to enter it
    dirs.push(dir);
    return dir;
  }

  it('brings every service to ready, restarts a crashed one, shuts down cleanly, and starts warm', { timeout: 240_000 }, async () => {
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: await dataDir(), ADMIN_PASSWORD: 'start test admin password' };
    const gateway = `http://127.0.0.1:${env.GATEWAY_PORT}`;
    const cli = new StartedCli(env);
    await cli.waitFor(allReady);
    expect(cli.output).toContain('iam: created the administrator admin@example.com (password from ADMIN_PASSWORD)');
    expect(cli.output).toContain('PostgreSQL created and started');
    for (const service of services) expect(cli.output).toMatch(new RegExp(`✓ ${service.key} +http://127\\.0\\.0\\.1:${env[`${envPrefix(service.key)}_PORT`]}`));

    const health = await fetch(`${gateway}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as { services: Record<string, { status: string }> };
    // The gateway reports every service it routes.
    const routed = services.filter((s) => !s.edge && s.routes.length > 0).map((s) => s.key);
    expect(Object.fromEntries(Object.entries(body.services).map(([key, s]) => [key, s.status]))).toEqual(Object.fromEntries(routed.map((key) => [key, 'ready'])));
    expect((await fetch(`${gateway}/api/v1/labels`)).status).toBe(401);
    const login = await fetch(`${gateway}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@example.com', password: env.ADMIN_PASSWORD }),
    });
    expect(login.status).toBe(200);
    const headers = { authorization: `Bearer ${((await login.json()) as { accessToken: string }).accessToken}` };
    const labels = (await (await fetch(`${gateway}/api/v1/labels`, { headers })).json()) as { total: number };
    expect(labels.total).toBe(4);
    // "Ready" is said once core's lookups are full: a seeded department is accepted at once, not a 422 until they fill.
    expect(cli.output.indexOf('✓ lookups equal to their masters')).toBeGreaterThan(-1);
    expect(cli.output.indexOf('✓ lookups equal to their masters')).toBeLessThan(cli.output.search(allReady));
    const order = await fetch(`${gateway}/api/v1/orders`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ item_name: 'First order', department_code: 'LAB' }) });
    expect(order.status, await order.clone().text()).toBe(201);

    // One service crashing does not take the others down; the supervisor restarts it.
    const corePid = Number((await cli.waitFor(/✓ core .*\(pid (\d+)\)/))[1]);
    process.kill(corePid, 'SIGKILL');
    await cli.waitFor(/✗ core exited \(SIGKILL\); restarting in 0\.5 s \(restart 1\)/);
    expect((await fetch(`${gateway}/api/v1/labels/MR`, { headers })).status).toBe(200);
    await cli.waitFor(new RegExp(`✓ core .*\\(pid (?!${corePid}\\))\\d+\\)`));
    const afterRestart = await fetch(`${gateway}/health`);
    expect(afterRestart.status, await afterRestart.clone().text()).toBe(200);
    // Proxied to the new core process (which answers 404 for a route it does not have yet), not a 502.
    expect((await fetch(`${gateway}/api/v1/orders/none`, { headers })).status).toBe(404);

    // A db command while the system runs uses its PostgreSQL and leaves it running.
    const status = spawnSync(process.execPath, [CLI, 'db', 'status', '--service', 'masterdata'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/masterdata \(embedded\):\n\s+applied \S+\s+20261123000000_create_labels/);
    expect((await fetch(`${gateway}/health`)).status).toBe(200);

    // Internal routes refuse a caller without a service token, on loopback too; the CLI signs as
    // the operator with the key it generated beside the role passwords (mode 0600).
    expect((await fetch(`http://127.0.0.1:${env.IAM_PORT}/internal/v1/export/user`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${env.CORE_PORT}/internal/v1/dead-letters`)).status).toBe(401);
    const dlq = spawnSync(process.execPath, [CLI, 'dlq', 'list'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(dlq.status, dlq.stdout + dlq.stderr).toBe(0);
    expect(dlq.stdout).toContain('No dead letters.');
    const credentialsFile = path.join(env.ARCHIPELAGO_DATA_DIR!, 'credentials.json');
    expect((await stat(credentialsFile)).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(await readFile(credentialsFile, 'utf8')) as object)).toEqual(expect.arrayContaining(['CORE_SERVICE_PRIVATE_KEY', 'OPERATOR_PRIVATE_KEY']));

    // Ctrl-C reaches the CLI and its services, not PostgreSQL (own process group): the services
    // close their connections, then PostgreSQL stops, so it never has to terminate a session.
    expect(await cli.interrupt()).toBe(0);
    expect(cli.output).toContain('Stopped.');
    expect(existsSync(path.join(env.ARCHIPELAGO_DATA_DIR!, 'postgres/pgdata/postmaster.pid'))).toBe(false);
    const postgresLog = await readFile(path.join(env.ARCHIPELAGO_DATA_DIR!, 'postgres/postgres.log'), 'utf8');
    expect(postgresLog).toContain('database system is shut down');
    expect(postgresLog).not.toContain('terminating connection');

    const warm = new StartedCli(env);
    await warm.waitFor(allReady);
    expect(warm.output).toContain('PostgreSQL started on');
    expect(warm.output).toContain('core: schema up to date; seeded');
    expect(warm.output).not.toContain('lookups equal to their masters'); // nothing migrated: no drift check at start
    expect(await warm.stop('SIGTERM')).toBe(0);
  });

  it('recovers by itself from a PostgreSQL crash, a storm of lost connections and a hung service', { timeout: 240_000 }, async () => {
    const dir = await dataDir();
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: dir, ADMIN_PASSWORD: 'start test admin password',
      ARCHIPELAGO_LIVENESS_TIMEOUT_MS: '3000', RATE_LIMIT_PER_IP: '1000000', RATE_LIMIT_PER_USER: '1000000' };
    const gateway = `http://127.0.0.1:${env.GATEWAY_PORT}`;
    const cli = new StartedCli(env);
    await cli.waitFor(allReady);

    // Secrets, logs and the cluster are the owner's alone (root: PostgreSQL's group may traverse).
    const others = userInfo().uid === 0 ? 0o007 : 0o077;
    for (const directory of [dir, path.join(dir, 'postgres'), path.join(dir, 'logs')]) expect((await stat(directory)).mode & others, directory).toBe(0);
    const files = [...(await readdir(path.join(dir, 'logs'))).map((f) => path.join(dir, 'logs', f)),
      ...['postgres/postgres.log', 'postgres/credentials.json', 'postgres/superuser-password'].map((f) => path.join(dir, f))];
    expect(files.length).toBeGreaterThan(services.length); // a log per service, and PostgreSQL's files
    for (const file of files) expect((await stat(file)).mode & 0o777, file).toBe(0o600);

    const login = await fetch(`${gateway}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@example.com', password: env.ADMIN_PASSWORD }),
    });
    const headers = { authorization: `Bearer ${((await login.json()) as { accessToken: string }).accessToken}` };
    // Steady reads through the gateway (masterdata and core) for the whole test; every status is kept.
    const statuses = new Map<number, number>();
    let loading = true;
    const load = (async () => {
      while (loading) {
        for (const url of ['/api/v1/labels', '/api/v1/orders']) {
          const status = await fetch(`${gateway}${url}`, { headers, signal: AbortSignal.timeout(10_000) }).then((r) => r.status, () => 0);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }
    })();
    const serving = async (timeoutMs: number) => {
      const started = Date.now();
      for (;;) {
        const response = await fetch(`${gateway}/api/v1/orders`, { headers, signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
        if (response?.status === 200) return;
        if (Date.now() - started > timeoutMs) {
          const log = await readFile(path.join(dir, 'postgres/postgres.log'), 'utf8').catch(() => '');
          throw new Error(`not serving ${timeoutMs / 1000} s later (last: ${response?.status}):\n${cli.output}\n${log.split('\n').slice(-40).join('\n')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };

    // Every backend of every service terminated, again and again: no service exits.
    const superuser = { host: '127.0.0.1', port: Number(env.ARCHIPELAGO_PG_PORT), user: 'postgres', database: 'postgres',
      password: (await readFile(path.join(dir, 'postgres/superuser-password'), 'utf8')).trim() };
    const admin = new pg.Client(superuser);
    await admin.connect();
    let terminated = 0;
    try {
      for (let round = 0; round < 10; round++) {
        const { rowCount } = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> 'postgres'`);
        terminated += rowCount ?? 0;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    } finally {
      await admin.end();
    }
    expect(terminated).toBeGreaterThan(20);
    await serving(15_000);
    expect(cli.output).not.toContain('exited (');

    // The postmaster killed outright: the supervisor restarts it and services reconnect, nobody acting.
    const postmaster = Number((await readFile(path.join(dir, 'postgres/pgdata/postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(postmaster, 'SIGKILL');
    await cli.waitFor(/PostgreSQL exited unexpectedly \(SIGKILL\); restarting it/);
    await serving(15_000);
    expect(cli.output).toMatch(/✓ PostgreSQL restarted in [\d.]+ s/);
    expect(cli.output).not.toContain('exited (');
    // Lost connections failed only the requests in flight, as 503s: never a 500 (nor a 502 or 504).
    expect([...statuses.keys()].filter((status) => status !== 200 && status !== 503), JSON.stringify([...statuses])).toEqual([]);

    // A frozen service is noticed by its liveness check, killed and restarted.
    const corePid = Number((await cli.waitFor(/✓ core .*\(pid (\d+)\)/))[1]);
    process.kill(corePid, 'SIGSTOP');
    await cli.waitFor(new RegExp(`✗ core \\(pid ${corePid}\\) has not answered its liveness check for [\\d.]+ s; killing it`), 30_000);
    await cli.waitFor(/✗ core exited \(SIGKILL\); restarting/);
    await cli.waitFor(new RegExp(`✓ core .*\\(pid (?!${corePid}\\))\\d+\\)`), 30_000);
    await serving(15_000);
    loading = false;
    await load;
    expect(await cli.stop('SIGINT')).toBe(0);
  });

  it('takes its services down with it when the supervisor itself is killed', { timeout: 120_000 }, async () => {
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: await dataDir() };
    const cli = new StartedCli(env);
    await cli.waitFor(allReady);
    const pids = [...cli.output.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(services.length);
    await cli.stop('SIGKILL');
    await waitUntil(() => pids.every((pid) => !alive(pid)), 45_000); // each closes gracefully first (10 s at most, then exits anyway); generous for a loaded machine
    // PostgreSQL does not watch its parent; the next start stops the leftover and carries on.
    const postmaster = Number((await readFile(path.join(env.ARCHIPELAGO_DATA_DIR!, 'postgres/pgdata/postmaster.pid'), 'utf8')).split('\n')[0]);
    expect(alive(postmaster)).toBe(true);
    const again = new StartedCli(env);
    await again.waitFor(allReady);
    expect(again.output).toContain(`Stopped a PostgreSQL (pid ${postmaster}) left running by an earlier start that was killed.`);
    expect(alive(postmaster)).toBe(false);
    expect(await again.stop('SIGINT')).toBe(0);
  });

  it('stops cleanly when interrupted during start-up, leaving no PostgreSQL behind', { timeout: 60_000 }, async () => {
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: await dataDir() };
    const cli = new StartedCli(env);
    await cli.waitFor(/PostgreSQL created and started/);
    expect(await cli.stop('SIGINT')).toBe(0);
    expect(cli.output).toContain('Stopped.');
    expect(cli.output).not.toMatch(allReady);
    expect(existsSync(path.join(env.ARCHIPELAGO_DATA_DIR!, 'postgres/pgdata/postmaster.pid'))).toBe(false);
  });

  it('fails the start with the log of a service that cannot start, and leaves nothing running', { timeout: 60_000 }, async () => {
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: await dataDir() };
    const cli = new StartedCli({ ...env, LOG_LEVEL: 'loud' }); // every service rejects this
    expect(await cli.exited).toBe(1);
    expect(cli.output).toMatch(/exited before it was ready\. Last lines of .*\.log:/);
    expect(cli.output).toContain('LOG_LEVEL: must be');
    expect(cli.output).not.toContain('restarting in');
    expect(existsSync(path.join(env.ARCHIPELAGO_DATA_DIR!, 'postgres/pgdata/postmaster.pid'))).toBe(false);
  });

  it('says which port is taken and how to free it', async () => {
    const env: Record<string, string> = { ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: await dataDir() };
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.CORE_PORT), '127.0.0.1', resolve));
    try {
      const cli = new StartedCli(env);
      expect(await cli.exited).toBe(1);
      expect(cli.output).toContain(`Port ${env.CORE_PORT}, wanted by service "core", is already in use`);
      expect(cli.output).toContain('set CORE_PORT to a free port');
      expect(cli.output).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      blocker.close();
    }
  });

  it('gives up on an unreachable external database with a clear error', async () => {
    const env: Record<string, string> = {
      ...(await portsEnv()),
      ARCHIPELAGO_DATA_DIR: await dataDir(),
      CORE_DATABASE_URL: `postgresql://core_app:hidden@127.0.0.1:${await freePort()}/core`,
      DATABASE_CONNECT_ATTEMPTS: '2',
    };
    const cli = new StartedCli(env);
    expect(await cli.exited).toBe(1);
    expect(cli.output).toMatch(/Cannot reach PostgreSQL at postgresql:\/\/core_app:\*\*\*@127\.0\.0\.1:\d+\/core after 2 attempts/);
    expect(cli.output).toContain('CORE_DATABASE_URL');
    expect(cli.output).not.toContain('hidden');
    expect(cli.output).not.toMatch(/\n\s+at /);
  });

  it('explains a data directory it cannot write', async () => {
    const dir = await dataDir();
    const root = userInfo().uid === 0;
    // Root may write anywhere, so as root the CLI runs as `nobody` against root's directory.
    if (!root) await chmod(dir, 0o500);
    const cli = new StartedCli({ ...(await portsEnv()), ARCHIPELAGO_DATA_DIR: dir }, root ? { uid: 65534 } : {});
    expect(await cli.exited).toBe(1);
    expect(cli.output).toContain(`Cannot write to the data directory ${path.join(dir, 'postgres')}`);
    expect(cli.output).toContain('chown');
    expect(cli.output).not.toMatch(/\n\s+at /);
  });
});

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

// A free port whose neighbours at these offsets are free too (a second instance, the clusters).
async function freeBase(offsets: readonly number[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    if ((await Promise.all(offsets.map((offset) => canListen(port + offset)))).every(Boolean)) return port;
  }
}

// The distributed topology as `start` runs it: IAM, masterdata and core each on a PostgreSQL of
// their own, core twice (the registry's replicas); the gateway in this process, with the keys
// the CLI generated.
describe('npm start in the distributed topology', () => {
  const SERVICES = ['iam', 'masterdata', 'core'];
  const ADMIN_PASSWORD = 'distributed test admin password';
  let dataDir = '';
  let env: Record<string, string> = {};
  let cli: StartedCli;
  let gateway: HttpServer | undefined;
  let gatewayUrl = '';
  let coreUrls: string[] = [];
  let headers: Record<string, string> = {};
  const call = (route: string, body?: unknown) => fetch(`${gatewayUrl}${route}`, { method: body === undefined ? 'GET' : 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const command = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'archipelago-distributed-'));
    await chmod(dataDir, 0o755); // run as root, PostgreSQL's own user must be able to enter it
    env = {
      ARCHIPELAGO_TOPOLOGY: 'distributed',
      ARCHIPELAGO_DATA_DIR: dataDir,
      ARCHIPELAGO_PG_PORT: String(await freeBase([1, 2, 3, 4, 5])),
      IAM_PORT: String(await freeBase([0])),
      MASTERDATA_PORT: String(await freeBase([0])),
      CORE_PORT: String(await freeBase([0, 100])),
      ADMIN_PASSWORD,
      LOG_LEVEL: 'info', // request lines tell which instance served what
      LOOKUP_RECONCILE_AT: 'off',
    };
    coreUrls = [`http://127.0.0.1:${env.CORE_PORT}`, `http://127.0.0.1:${Number(env.CORE_PORT) + 100}`];
    cli = new StartedCli(env, { args: SERVICES.flatMap((s) => ['--service', s]) });
    await cli.waitFor(/All 3 services \(4 processes\) ready in/);

    const registry = loadRegistry(undefined, env);
    const dead = `http://127.0.0.1:${await freePort()}`;
    gateway = await buildGateway({
      logger: false,
      credentials: serviceCredentialsFromEnv('gateway', (await cliKeyring(registry, env)).environmentOf('gateway')),
      upstreams: gatewayUpstreams(registry, {
        IAM_URL: `http://127.0.0.1:${env.IAM_PORT}`, MASTERDATA_URL: `http://127.0.0.1:${env.MASTERDATA_PORT}`, CORE_URL: coreUrls.join(','), NOTIFICATION_URL: dead, REPORTING_URL: dead,
      }),
    });
    gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 });
    headers = { 'content-type': 'application/json' };
    const login = await call('/api/v1/auth/login', { email: 'admin@example.com', password: ADMIN_PASSWORD });
    headers.authorization = `Bearer ${((await login.json()) as { accessToken: string }).accessToken}`;
  }, 180_000);
  afterAll(async () => {
    await gateway?.close();
    if (cli?.running) await cli.stop('SIGINT');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('gives each service a PostgreSQL of its own, provisioned with its roles only and migrated', { timeout: 120_000 }, async () => {
    for (const key of SERVICES) {
      const port = Number((await cli.waitFor(new RegExp(`PostgreSQL created and started on 127\\.0\\.0\\.1:(\\d+) for ${key} `)))[1]);
      const password = (await readFile(path.join(dataDir, `postgres-${key}`, 'superuser-password'), 'utf8')).trim();
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
      await client.connect();
      try {
        const databases = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname');
        expect(databases.rows.map((r) => r.datname)).toEqual([key, 'postgres'].sort());
        const roles = await client.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname ~ '_(owner|app)$' ORDER BY rolname");
        expect(roles.rows.map((r) => r.rolname)).toEqual([`${key}_app`, `${key}_owner`]);
      } finally {
        await client.end();
      }
    }
    // The CLI's own commands find every cluster of the running system.
    const status = command('db', 'status');
    expect(status.status, status.stderr).toBe(0);
    for (const key of SERVICES) expect(status.stdout).toMatch(new RegExp(`${key} \\(embedded\\):\\n\\s+applied`));
  });

  it("carries masterdata's change to core's lookup across the clusters", { timeout: 120_000 }, async () => {
    const resource = { reference_number: 'REF-DIST', label_code: 'DIST', first_name: 'Ada', last_name: 'Byron' };
    expect((await call('/api/v1/resources', resource)).status).toBe(422); // no such label yet
    expect((await call('/api/v1/labels', { code: 'DIST', label: 'Dist.', display_name: 'Distributed', abbreviation: 'Dist.', display_order: 9 })).status).toBe(201);
    let status = 0;
    for (let i = 0; i < 300 && status !== 201; i++) {
      status = (await call('/api/v1/resources', resource)).status;
      if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(201);
  });

  it('balances over both core instances, and keeps answering while one is dead', { timeout: 120_000 }, async () => {
    const served = async () => Promise.all(['core', 'core-2'].map(async (key) => (await readFile(path.join(dataDir, 'logs', `${key}.log`), 'utf8')).split('"url":"/api/v1/orders"').length - 1));
    const before = await served();
    for (let i = 0; i < 6; i++) expect((await call('/api/v1/orders')).status).toBe(200);
    // The logs reach their files through the supervisor's pipes: wait (bounded) for them.
    let after = await served();
    for (let i = 0; i < 100 && !(after[0]! > before[0]! && after[1]! > before[1]!); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await served();
    }
    expect(after[0]!).toBeGreaterThan(before[0]!);
    expect(after[1]!).toBeGreaterThan(before[1]!);

    // The supervisor paused, so nothing restarts the killed instance while the requests run.
    const pid = Number((await cli.waitFor(/✓ core-2 +\S+ +ready in .*\(pid (\d+)\)/))[1]);
    cli.pause();
    try {
      process.kill(pid, 'SIGKILL');
      while (!(await canListen(Number(env.CORE_PORT) + 100))) await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 0; i < 6; i++) expect((await call('/api/v1/orders')).status).toBe(200);
    } finally {
      cli.resume();
    }
  });

  it('refuses an internal call without a service credential, on every service, and so does the gateway', { timeout: 120_000 }, async () => {
    for (const url of [coreUrls[0]!, `http://127.0.0.1:${env.MASTERDATA_PORT}`, `http://127.0.0.1:${env.IAM_PORT}`]) {
      expect((await fetch(`${url}/internal/v1/events`)).status, url).toBe(401);
    }
    expect((await call('/internal/v1/events')).status).toBe(401); // a user's token is no service credential
    // The operator's CLI signs its calls, so it gets through.
    const dlq = command('dlq', 'list', '--service', 'core');
    expect(dlq.status, dlq.stdout + dlq.stderr).toBe(0);
  });
});
