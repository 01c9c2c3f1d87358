/**
 * The distributed fault run: `npm run test:faults -- --distributed [fault …]`. Starts the system as
 * `npm run start:distributed` does (Redis, RabbitMQ, one PostgreSQL per service, core and
 * notification twice behind the gateway) on free loopback ports and a fresh data directory; drives
 * a steady stream through the gateway (label creates and updates, orders and their status changes,
 * reads) with sockets of the order's department and of its creator connected throughout; injects
 * the faults of FAULTS in turn; then checks the ledger of every 2xx against the masters, every
 * lookup table, every order's notifications, the badges and what each socket received.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { registerCleanup } from '../lib/cleanup.ts';
import { BENCH_ADMIN, buildDist, RunningSystem } from '../lib/system.ts';
import { makeDataDir } from '../lib/temp.ts';
import { check, type Databases } from './check.ts';
import { gatewayClient, type GatewayClient, type Recorder } from './client.ts';
import { FAULTS, waitWhole, type FaultContext } from './distributed-faults.ts';
import { DEPARTMENT, startGenerator, type Ledger } from './generator.ts';
import { loggedCauses } from './logs.ts';
import { listen, type Listener } from './sockets.ts';
import { describeWindow, now, sleep, windowFigures, type FaultWindow } from './timeline.ts';

/** Every fault of the distributed run, in the order of the full run. */
export const DISTRIBUTED_FAULTS = Object.keys(FAULTS);

export interface DistributedOptions {
  readonly faults: readonly string[];
  readonly signal: AbortSignal;
  readonly say: (line: string) => void;
  /** How long each fault is watched (and the load measured) before the next; default 40 s. */
  readonly observeS?: number;
  /** Load before the first fault; default 15 s. */
  readonly warmupS?: number;
  /** Concurrent request loops of the generator; default 4. */
  readonly workers?: number;
  /** Socket users in the orders' department (plus one socket of their creator); default 3. */
  readonly departmentSockets?: number;
}

export interface DistributedResult {
  /** Every loss or duplicate effect found (empty: the run passed). */
  readonly problems: readonly string[];
  readonly faults: readonly { name: string; note: string; recoveryMs: number | undefined; statuses: string }[];
}

const BASELINE_S = 10;

/** Runs the distributed fault run and prints its figures; stops everything it started, also on failure. */
export async function runDistributedFaults(options: DistributedOptions): Promise<DistributedResult> {
  const { say, signal } = options;
  const observeMs = (options.observeS ?? 40) * 1000;
  const began = now();
  say('Building dist/ …');
  await buildDist();
  const dir = await makeDataDir('faults-distributed');
  const { system, readyMs } = await RunningSystem.start(dir.path, signal, {
    distributed: true,
    // One sign-in for the whole run.
    env: { JWT_ACCESS_TTL_SECONDS: '3600', LOOKUP_RECONCILE_AT: 'off' },
  });
  const listeners: Listener[] = [];
  let generator: { stop(): Promise<void> } | undefined;
  // However the run ends (a test's timeout included): no load left running, no socket reconnecting.
  const quiet = registerCleanup(async () => {
    await generator?.stop();
    for (const listener of listeners) listener.close();
  });
  try {
    say(`Distributed system ready in ${(readyMs / 1000).toFixed(1)} s (data in ${dir.path})`);
    const gateway = system.url('gateway');
    const databases = await clusterConfigs(system);
    const recorder: Recorder = { responses: [], unexpected: [] };
    const admin = await signIn(gateway, BENCH_ADMIN);
    const client = gatewayClient(gateway, admin.token, recorder);
    listeners.push(...(await connectSockets(gateway, client, admin, options.departmentSockets ?? 3)));
    say(`${listeners.length} sockets through the gateway (${listeners.length - 1} in department ${DEPARTMENT}, 1 of the orders' creator), each catching up from its last cursor on every reconnection`);

    const run = Date.now().toString(36).toUpperCase().slice(-4);
    const ledger: Ledger = { labels: [], orders: [] };
    const workers = options.workers ?? 4;
    generator = startGenerator(client, ledger, run, workers);
    const windows: FaultWindow[] = [];
    let wholeMs: number | undefined;
    const context: FaultContext = { system, databases, signal, observeMs };
    try {
      say(`Load: ${workers} loops through the gateway (label creates and updates, orders and status changes, reads); warming up ${options.warmupS ?? 15} s`);
      await sleep((options.warmupS ?? 15) * 1000);
      for (const name of options.faults) {
        if (signal.aborted) break;
        const window: FaultWindow = { name, startedAt: now(), endedAt: 0, note: '' };
        windows.push(window);
        say(`→ ${name}`);
        window.note = await FAULTS[name]!.inject(context);
        await sleep(Math.max(0, window.startedAt + observeMs - now()));
        window.endedAt = now();
        say(`  ${window.note}`);
      }
      // What died must come back, if not within its window then now (the load keeps running meanwhile).
      wholeMs = await waitWhole(context, gateway, 90_000);
      say(wholeMs === undefined ? '✗ the system was NOT whole again within 90 s after the last fault' : `Every instance ready and core's relay led ${(wholeMs / 1000).toFixed(1)} s after the last fault's window`);
    } finally {
      await generator.stop();
    }
    signal.throwIfAborted();

    const verdict = await check(databases, run, ledger, listeners, (listener) => unreadCount(gateway, listener), 60_000);
    const causes = await loggedCauses(path.join(dir.path, 'logs'), recorder.unexpected);

    say('');
    say(`Distributed fault run ${run}: ${recorder.responses.length} responses, ${ledger.labels.length} label and ${ledger.orders.length} order creates, ${((now() - began) / 1000).toFixed(0)} s in all; ` +
      `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs`);
    const faults = windows.map((window, index) => {
      const figures = windowFigures(recorder.responses, window, BASELINE_S);
      say('');
      for (const line of describeWindow(index, window, figures)) say(line);
      return { name: window.name, note: window.note, recoveryMs: figures.recoveryMs, statuses: figures.statuses };
    });
    say('');
    for (const line of verdict.lines) say(line);
    if (recorder.unexpected.length > 0) {
      say('Responses 5xx other than 503 (status, request, request id) and what the services logged for them:');
      for (const line of recorder.unexpected.slice(0, 20)) say(`   ${line}${causes.get(line.split(' ').at(-1)!) ? `\n      ${causes.get(line.split(' ').at(-1)!)}` : ''}`);
    }
    say(verdict.problems.length === 0 && wholeMs !== undefined ? 'PASSED: lost = 0, duplicate effects = 0, everything came back' : `FAILED: ${[...verdict.problems, ...(wholeMs === undefined ? ['not whole again'] : [])].join('; ')}`);
    const problems = [...verdict.problems, ...(wholeMs === undefined ? ['the system was not whole again within 90 s after the last fault'] : [])];
    return { problems, faults };
  } catch (error) {
    say(`Last CLI output:\n${system.output().split('\n').slice(-40).join('\n')}`);
    throw error;
  } finally {
    await quiet();
    await system.stop();
    await dir.remove();
  }
}

// Each service's cluster, as the CLI printed it: "PostgreSQL … on 127.0.0.1:<port> for <service> (data in <dir>)".
async function clusterConfigs(system: RunningSystem): Promise<Databases> {
  const configs = new Map<string, pg.ClientConfig & { dataDir: string }>();
  for (const match of system.output().matchAll(/PostgreSQL (?:created and )?started on 127\.0\.0\.1:(\d+) for (\S+) \(data in (\S+)\)/g)) {
    const password = (await readFile(path.join(match[3]!, 'superuser-password'), 'utf8')).trim();
    configs.set(match[2]!, { host: '127.0.0.1', port: Number(match[1]), user: 'postgres', password, database: match[2]!, dataDir: match[3]! });
  }
  return configs;
}

interface SignedIn {
  readonly id: string;
  readonly token: string;
  readonly departmentCode: string | null;
}

async function signIn(gateway: string, credentials: { email: string; password: string }, departmentCode: string | null = null): Promise<SignedIn> {
  const response = await fetch(`${gateway}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
  if (response.status !== 200) throw new Error(`sign-in of ${credentials.email} failed: HTTP ${response.status}`);
  const token = ((await response.json()) as { accessToken: string }).accessToken;
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string };
  return { id: claims.sub, token, departmentCode };
}

// Staff of the department (created now) and the administrator who creates the orders, each with a
// socket that starts from the newest notification it can see (a warm-up order makes one for each).
async function connectSockets(gateway: string, client: GatewayClient, admin: SignedIn, count: number): Promise<Listener[]> {
  const users: SignedIn[] = [admin];
  for (let i = 0; i < count; i++) {
    const credentials = { email: `fault-${Date.now().toString(36)}-${i}@example.com`, password: 'fault run staff password' };
    const created = await client.send('POST', '/api/v1/users', { ...credentials, display_name: `Fault run ${i}`, department_code: DEPARTMENT, roles: ['staff'] });
    if (created.outcome !== 201) throw new Error(`creating a staff user failed: ${String(created.outcome)} ${JSON.stringify(created.body)}`);
    users.push(await signIn(gateway, credentials, DEPARTMENT));
  }
  const order = await client.send('POST', '/api/v1/orders', { item_name: 'fault run warm-up', department_code: DEPARTMENT });
  const id = (order.body as { id: string }).id;
  for (const status of ['PROCESSING', 'COMPLETED']) await client.send('POST', `/api/v1/orders/${id}/status`, { status });
  const listeners: Listener[] = [];
  for (const user of users) {
    let cursor: string | undefined;
    for (let i = 0; i < 300 && !cursor; i++) {
      const feed = await fetch(`${gateway}/api/v1/notifications?limit=1`, { headers: { authorization: `Bearer ${user.token}` } });
      cursor = feed.ok ? ((await feed.json()) as { items: { cursor: string }[] }).items[0]?.cursor : undefined;
      if (!cursor) await sleep(100);
    }
    if (!cursor) throw new Error(`the warm-up order's notification never reached user ${user.id}`);
    listeners.push(listen(gateway, user, cursor));
  }
  await Promise.all(listeners.map((listener) => listener.joined));
  return listeners;
}

async function unreadCount(gateway: string, listener: Listener): Promise<number> {
  const response = await fetch(`${gateway}/api/v1/notifications/unread-count`, { headers: { authorization: `Bearer ${listener.token}` } });
  return response.ok ? ((await response.json()) as { total: number }).total : -response.status;
}
