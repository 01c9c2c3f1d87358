import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { freePort } from '@archipelago/platform';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { startChildScript, type ChildScript } from '../lib/child-script.ts';
import { registerCleanup } from '../lib/cleanup.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { CpuMeter } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import { BENCH_ADMIN, type RunningSystem } from '../lib/system.ts';
import { connect } from './baselines.ts';

const SOCKETS = 1_000;
const CLIENT_PROCESSES = 2;
const DEPARTMENT = 'LAB';
const TABLE_ROWS = 1_000_000;
const RAMP = [10, 20, 40, 80, 160, 320, 640];
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

type Headers = Record<string, string>;
/** What one client process reports of a notification: when its last and first socket had it. */
interface Arrival { readonly last: number; readonly first: number; readonly firstWall: number }
const wallNow = () => performance.timeOrigin + performance.now();

async function json<T>(response: Response, what: string, status = 200): Promise<T> {
  if (response.status !== status) throw new Error(`${what} answered ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function signIn(gateway: string, credentials: { email: string; password: string }): Promise<{ token: string; headers: Headers }> {
  const response = await fetch(`${gateway}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
  const { accessToken } = await json<{ accessToken: string }>(response, 'sign-in');
  return { token: accessToken, headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' } };
}

/** A staff member of the department, created by the administrator, signed in. */
async function member(gateway: string, admin: Headers, name: string) {
  const credentials = { email: `${name}-${Date.now()}@bench.example`, password: 'bench member password 1' };
  const created = await fetch(`${gateway}/api/v1/users`, {
    method: 'POST', headers: admin,
    body: JSON.stringify({ ...credentials, display_name: name, department_code: DEPARTMENT, roles: ['staff'] }),
  });
  const { id } = await json<{ id: string }>(created, `creating ${name}`, 201);
  return { id, ...(await signIn(gateway, credentials)) };
}

/** The department's 1,000 sockets, over client processes; `done` is told when a key reached them all. */
async function startClients(url: string, token: string, processes: number, perProcess: number, signal: AbortSignal) {
  const arrivals = new Map<string, Arrival[]>();
  const waiters = new Set<() => void>();
  const clients: ChildScript[] = [];
  for (let i = 0; i < processes; i++) {
    clients.push(startChildScript('servers/socket-clients.ts', [url, token, String(perProcess)], (line) => {
      const [kind, key, last, first, firstWall] = line.split(' ');
      if (kind !== 'done') return;
      arrivals.set(key!, [...(arrivals.get(key!) ?? []), { last: Number(last), first: Number(first), firstWall: Number(firstWall) }]);
      for (const wake of [...waiters]) wake();
    }));
  }
  await Promise.all(clients.map((client) => client.waitFor(/^ready$/, signal)));
  return {
    /** When the last socket of every process had `key`, or undefined while some have not. */
    lastArrival: (key: string) => {
      const times = arrivals.get(key);
      return times && times.length === processes ? Math.max(...times.map((time) => time.last)) : undefined;
    },
    /** When the first socket had `key`: monotonic and wall clock. */
    firstArrival: (key: string) => {
      const times = arrivals.get(key);
      return times?.length ? { at: Math.min(...times.map((time) => time.first)), wall: Math.min(...times.map((time) => time.firstWall)) } : undefined;
    },
    pids: clients.map((client) => client.pid),
    /** Waits until every key has reached every socket, or `timeoutMs` passed; returns how many did. */
    async settle(keys: readonly string[], timeoutMs: number): Promise<number> {
      const deadline = performance.now() + timeoutMs;
      const complete = () => keys.filter((key) => arrivals.get(key)?.length === processes).length;
      while (complete() < keys.length && performance.now() < deadline && !signal.aborted) {
        await new Promise<void>((resolve) => {
          waiters.add(resolve);
          setTimeout(resolve, 50);
        }).finally(() => waiters.clear());
      }
      return complete();
    },
    stop: () => Promise.all(clients.map((client) => client.stop())),
  };
}

type Clients = Awaited<ReturnType<typeof startClients>>;

/** Sends `send(i)` at `rate` per second for `seconds` (open loop, at most 256 in flight); returns the keys sent and the rate they left at. */
async function atRate(rate: number, seconds: number, send: (i: number) => Promise<string>, signal: AbortSignal): Promise<{ keys: string[]; sentPerSecond: number; failed: string[] }> {
  const keys: string[] = [];
  const failed: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const total = Math.round(rate * seconds);
  const began = performance.now();
  for (let i = 0; i < total && !signal.aborted; i++) {
    await sleep(began + (i * 1000) / rate - performance.now());
    if (inFlight.size >= 256) await Promise.race(inFlight);
    const request = send(i).then((key) => void keys.push(key), (error: unknown) => void failed.push((error as Error).message));
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  }
  const dispatched = Math.round(rate * seconds);
  const dispatchS = (performance.now() - began) / 1000 + 1 / rate;
  await Promise.all(inFlight);
  return { keys, sentPerSecond: dispatched / dispatchS, failed };
}

/** The highest rate of the ramp at which every broadcast reached every socket within a second after its step. */
async function ramp(context: ScenarioContext, clients: Clients, broadcast: (i: number) => Promise<string>, what: string, cpu: () => () => Record<string, number>) {
  const seconds = context.quick ? 2 : 4;
  let sustained = 0;
  const steps: { rate: number; sentPerSecond: number; delivered: number; sent: number; failed: number; cpu: Record<string, number> }[] = [];
  for (const rate of RAMP) {
    const meter = cpu();
    const { keys, sentPerSecond, failed } = await atRate(rate, seconds, broadcast, context.signal);
    const delivered = await clients.settle(keys, 1_000);
    const used = meter();
    steps.push({ rate, sentPerSecond: round(sentPerSecond, 1), delivered, sent: keys.length, failed: failed.length, cpu: used });
    context.log(`${what}: ${rate}/s offered, ${sentPerSecond.toFixed(1)}/s sent, ${delivered}/${keys.length} reached all ${SOCKETS} sockets${failed.length ? `, ${failed.length} refused (${failed[0]})` : ''}; CPU ${formatCpu(used)}`);
    if (delivered < keys.length || failed.length > 0 || sentPerSecond < rate * 0.95) {
      await clients.settle(keys, 10_000); // let the backlog drain before the next measurement
      break;
    }
    sustained = rate;
  }
  return { sustained, steps };
}

/** Fills notifications with `rows` department broadcasts over 100 departments (1 % of them the bench's), this month. */
async function fillTable(system: RunningSystem, rows: number): Promise<number> {
  const client = await connect(system, 'notification');
  try {
    const began = performance.now();
    await client.query(`
      INSERT INTO notification.notifications (department_code, notification_type, title, message, priority, created_at, created_by)
      SELECT CASE WHEN g % 100 = 0 THEN '${DEPARTMENT}' ELSE 'BENCH' || (g % 100) END, 'BENCH', 'Bench ' || g, 'filler',
             (ARRAY['CRITICAL', 'HIGH', 'NORMAL', 'LOW'])[1 + g % 4],
             date_trunc('month', now()) + (now() - date_trunc('month', now())) * (g::float8 / $1), 'bench'
      FROM generate_series(1, $1::int) AS g`, [rows]);
    // Vacuumed as a table at rest is: autovacuum of a million fresh rows would otherwise run during the measurements.
    await client.query('VACUUM ANALYZE notification.notifications');
    return performance.now() - began;
  } finally {
    await client.end();
  }
}

/** Milliseconds between two wall-clock moments of each order's path, summarised per hop. */
type Hops = Record<string, ReturnType<LatencyRecorder['summary']>>;

/**
 * Where an order's end to end goes, from the databases' own timestamps (same machine, same wall
 * clock): core's outbox row (its transaction's start), the POST returning, the notification
 * consumer's transaction applying the event (applied_events.applied_at, its start), the insert
 * (created_at, taken under the insert lock), the first socket and the last one.
 */
async function hopsOf(system: RunningSystem, clients: Clients, returned: ReadonlyMap<string, { at: number; wall: number }>): Promise<Hops> {
  const ids = [...returned.keys()];
  const [core, notification] = [await connect(system, 'core'), await connect(system, 'notification')];
  try {
    const events = await core.query<{ order_id: string; event_id: string; occurred: number }>(
      `SELECT aggregate_id AS order_id, id::text AS event_id, extract(epoch FROM occurred_at) * 1000 AS occurred FROM core.outbox WHERE type = 'order.created' AND aggregate_id = ANY($1::text[])`, [ids]);
    const applied = await notification.query<{ event_id: string; applied: number }>(
      'SELECT event_id::text, extract(epoch FROM applied_at) * 1000 AS applied FROM notification.applied_events WHERE event_id = ANY($1::uuid[])', [events.rows.map((row) => row.event_id)]);
    const inserted = await notification.query<{ order_id: string; inserted: number }>(
      `SELECT reference_id::text AS order_id, extract(epoch FROM created_at) * 1000 AS inserted FROM notification.notifications WHERE reference_type = 'ORDER' AND reference_id = ANY($1::uuid[])`, [ids]);
    const appliedAt = new Map(applied.rows.map((row) => [row.event_id, Number(row.applied)]));
    const insertedAt = new Map(inserted.rows.map((row) => [row.order_id, Number(row.inserted)]));
    const hops = {
      'core transaction start → POST returned': new LatencyRecorder(),
      'POST returned → consumer applies': new LatencyRecorder(),
      'consumer applies → inserted': new LatencyRecorder(),
      'inserted → first socket': new LatencyRecorder(),
      'first socket → last socket': new LatencyRecorder(),
    };
    for (const event of events.rows) {
      const back = returned.get(event.order_id)!;
      const [apply, insert, first, last] = [appliedAt.get(event.event_id), insertedAt.get(event.order_id), clients.firstArrival(event.order_id), clients.lastArrival(event.order_id)];
      if (apply === undefined || insert === undefined || first === undefined || last === undefined) continue;
      hops['core transaction start → POST returned'].record(back.wall - Number(event.occurred));
      hops['POST returned → consumer applies'].record(apply - back.wall);
      hops['consumer applies → inserted'].record(insert - apply);
      hops['inserted → first socket'].record(first.wall - insert);
      hops['first socket → last socket'].record(last - first.at);
    }
    return Object.fromEntries(Object.entries(hops).map(([hop, recorder]) => [hop, recorder.summary()]));
  } finally {
    await Promise.all([core.end(), notification.end()]);
  }
}

/** CPU of groups of processes from now until the returned function is called, as % of one core. */
function cpuMeters(groups: Record<string, () => readonly number[]>) {
  const meters = Object.entries(groups).map(([name, pids]) => [name, new CpuMeter(pids)] as const);
  return () => Object.fromEntries(meters.map(([name, meter]) => [name, round(meter.read().percentOfOneCore, 0)]));
}

/** CPU of the processes on the path, and of the clients. */
function cpuOf(system: RunningSystem, clientPids: readonly number[]) {
  const services = system.servicePids();
  return cpuMeters({
    clients: () => clientPids,
    gateway: () => [services.get('gateway') ?? 0],
    notification: () => [services.get('notification') ?? 0],
    core: () => [services.get('core') ?? 0],
    postgres: () => system.postgresTree(),
  });
}

const formatCpu = (cpu: Record<string, number>) => Object.entries(cpu).map(([name, percent]) => `${name} ${percent}%`).join(', ');
const formatHops = (hops: Hops) => Object.entries(hops).map(([hop, s]) => `${hop} p50 ${s.p50Ms.toFixed(1)} / p99 ${s.p99Ms.toFixed(1)} ms`).join('; ');

/**
 * How long the machine makes anything wait while a phase runs: every 100 ms, a timer's lateness in
 * the bench process and one `SELECT 1` round trip to PostgreSQL. On an idle machine both are well
 * under a millisecond; what they are during the run is a floor under every hop above.
 */
async function probeMachine(system: RunningSystem) {
  const client = await connect(system, 'notification');
  const timer = new LatencyRecorder();
  const roundTrip = new LatencyRecorder();
  let running = true;
  const probing = (async () => {
    while (running) {
      const asked = performance.now();
      await sleep(100);
      timer.record(Math.max(0, performance.now() - asked - 100));
      const began = performance.now();
      await client.query('SELECT 1');
      roundTrip.record(performance.now() - began);
    }
  })();
  return async () => {
    running = false;
    await probing;
    await client.end();
    return { timerLateness: timer.summary(), postgresRoundTrip: roundTrip.summary() };
  };
}

const formatProbe = (probe: Awaited<ReturnType<Awaited<ReturnType<typeof probeMachine>>>>) =>
  `a 100 ms timer late by p50 ${probe.timerLateness.p50Ms.toFixed(1)} / p99 ${probe.timerLateness.p99Ms.toFixed(1)} ms, SELECT 1 round trip p50 ${probe.postgresRoundTrip.p50Ms.toFixed(1)} / p99 ${probe.postgresRoundTrip.p99Ms.toFixed(1)} ms`;

/** GET unread-count `times` times in a row through the gateway; its latency. */
async function unreadCounts(gateway: string, headers: Headers, times: number) {
  const recorder = new LatencyRecorder();
  let total = 0;
  for (let i = 0; i < times; i++) {
    const began = performance.now();
    const response = await fetch(`${gateway}/api/v1/notifications/unread-count`, { headers });
    total = (await json<{ total: number }>(response, 'unread-count')).total;
    recorder.record(performance.now() - began);
  }
  return { ...recorder.summary(), total };
}

/** Marks `times` of the department's broadcasts read, each followed by a timed GET unread-count (a count the change made uncached), which must be one less. */
async function unreadAfterChanges(system: RunningSystem, gateway: string, headers: Headers, times: number) {
  const client = await connect(system, 'notification');
  const ids = await client.query<{ id: string }>(`SELECT id FROM notification.notifications WHERE department_code = $1 AND user_id IS NULL ORDER BY created_at DESC LIMIT $2`, [DEPARTMENT, times]).finally(() => client.end());
  const recorder = new LatencyRecorder();
  let total = (await unreadCounts(gateway, headers, 1)).total;
  for (const { id } of ids.rows) {
    await json(await fetch(`${gateway}/api/v1/notifications/${id}/read`, { method: 'POST', headers: { authorization: headers.authorization! } }), 'POST read');
    const began = performance.now();
    const counted = (await json<{ total: number }>(await fetch(`${gateway}/api/v1/notifications/unread-count`, { headers }), 'unread-count')).total;
    recorder.record(performance.now() - began);
    if (counted !== total - 1) throw new Error(`unread-count answered ${counted} after a read; it was ${total}`);
    total = counted;
  }
  return recorder.summary();
}

const BULK_RECIPIENTS = 10;

/**
 * Multi-recipient creates: the same closed loop of 32, each POST /api/v1/notifications/bulk to
 * BULK_RECIPIENTS users, each user with one socket of its own (a client process each); a
 * notification counts once it is persisted and its recipient's socket has it.
 */
async function bulkCreates(context: ScenarioContext, gateway: string, admin: Headers, seconds: number) {
  const recipients = await Promise.all(Array.from({ length: BULK_RECIPIENTS }, (_, i) => member(gateway, admin, `bench-bulk-${i}`)));
  const sockets = await Promise.all(recipients.map((recipient) => startClients(gateway, recipient.token, 1, 1, context.signal)));
  const stop = registerCleanup(async () => void (await Promise.all(sockets.map((client) => client.stop()))));
  const keys = recipients.map((): string[] => []);
  const failures: string[] = [];
  let requests = 0;
  const body = JSON.stringify({ user_ids: recipients.map((recipient) => recipient.id), notification_type: 'BENCH', title: 'For several', message: 'A multi-recipient notification from the bench' });
  const began = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() - began < seconds * 1000 && !context.signal.aborted) {
      const response = await fetch(`${gateway}/api/v1/notifications/bulk`, { method: 'POST', headers: admin, body });
      if (response.status !== 201) {
        failures.push(`${response.status} ${await response.text()}`);
        continue;
      }
      requests++;
      ((await response.json()) as { items: { id: string }[] }).items.forEach((item, i) => keys[i]!.push(item.id));
    }
  }));
  const elapsedS = (performance.now() - began) / 1000;
  const delivered = (await Promise.all(sockets.map((client, i) => client.settle(keys[i]!, 5_000)))).reduce((sum, n) => sum + n, 0);
  const persisted = keys.reduce((sum, list) => sum + list.length, 0);
  await stop();
  context.log(`multi-recipient creates (${BULK_RECIPIENTS} users each): ${requests} requests, ${persisted} notifications persisted, ${delivered} delivered in ${elapsedS.toFixed(1)} s (${failures.length} refused${failures[0] ? `: ${failures[0]}` : ''})`);
  return { recipients: BULK_RECIPIENTS, requests, persisted, delivered, refused: failures.length, seconds: elapsedS, requestsPerSecond: requests / elapsedS, notificationsPerSecond: Math.min(persisted, delivered) / elapsedS };
}

/** End to end: POST /api/v1/orders returning → the last of the sockets receiving notification:new, at 10 orders/s; with the hops, CPU and the machine's waits. */
async function endToEndAtTen(context: ScenarioContext, system: RunningSystem, admin: Headers, clients: Clients, seconds: number) {
  const gateway = system.url('gateway');
  const returned = new Map<string, { at: number; wall: number }>();
  const order = async (i: number) => {
    const response = await fetch(`${gateway}/api/v1/orders`, { method: 'POST', headers: admin, body: JSON.stringify({ item_name: `Bench ${i}`, department_code: DEPARTMENT }) });
    const { id } = await json<{ id: string }>(response, 'POST /api/v1/orders', 201);
    returned.set(id, { at: now(), wall: wallNow() });
    return id;
  };
  const meter = cpuOf(system, clients.pids);
  const probe = await probeMachine(system);
  const orders = await atRate(10, seconds, order, context.signal);
  const reached = await clients.settle(orders.keys, 10_000);
  const cpu = meter();
  const machine = await probe();
  const e2e = new LatencyRecorder();
  for (const key of orders.keys) {
    const last = clients.lastArrival(key);
    if (last !== undefined) e2e.record(Math.max(0, last - returned.get(key)!.at));
  }
  const endToEnd = e2e.summary();
  context.log(`end to end at 10 orders/s: p50 ${endToEnd.p50Ms.toFixed(1)} ms, p99 ${endToEnd.p99Ms.toFixed(1)} ms (${reached}/${orders.keys.length} reached every socket; ${orders.failed.length} orders refused${orders.failed[0] ? `: ${orders.failed[0]}` : ''})`);
  const hops = await hopsOf(system, clients, returned);
  context.log(`  hops: ${formatHops(hops)}`);
  context.log(`  CPU during it (% of one core): ${formatCpu(cpu)}; load average ${loadavg().map((load) => load.toFixed(2)).join(' ')}; ${formatProbe(machine)}`);
  return { endToEnd, hops, cpu, machine, reached, sent: orders.keys.length, refused: orders.failed.length };
}

/** The same 10/s as the orders to a bare server, from POST /broadcast returning to the last socket: what the machine gives a fan-out alone. */
async function bareAtTen(context: ScenarioContext, system: RunningSystem, to: Clients, broadcast: (i: number) => Promise<string>, returned: ReadonlyMap<string, number>, seconds: number, what: string) {
  const probe = await probeMachine(system);
  const run = await atRate(10, seconds, broadcast, context.signal);
  await to.settle(run.keys, 10_000);
  const machine = await probe();
  const recorder = new LatencyRecorder();
  for (const key of run.keys) {
    const last = to.lastArrival(key);
    if (last !== undefined) recorder.record(Math.max(0, last - returned.get(key)!));
  }
  const summary = recorder.summary();
  context.log(`${what} at 10 broadcasts/s, POST /broadcast returned → last socket: p50 ${summary.p50Ms.toFixed(1)} ms, p99 ${summary.p99Ms.toFixed(1)} ms; ${formatProbe(machine)}`);
  return { summary, machine };
}

/** A bare Socket.IO server (servers/bare-socketio.ts) and its POST /broadcast, timed to its return. */
async function startBare(context: ScenarioContext) {
  const port = await freePort();
  const bare = startChildScript('servers/bare-socketio.ts', [String(port)]);
  const stop = registerCleanup(() => bare.stop());
  await bare.waitFor(/^listening$/, context.signal);
  const url = `http://127.0.0.1:${port}`;
  const sample = JSON.stringify({ department_code: DEPARTMENT, notification_type: 'BENCH', title: 'Broadcast', message: 'A department broadcast from the bench', priority: 'NORMAL', metadata: {}, created_by: 'bench', read_at: null, seen_at: null, archived_at: null, actioned_at: null });
  // Keys unique over the whole ramp (atRate's index restarts at every step; a repeated key never completes).
  let n = 0;
  const returned = new Map<string, number>();
  const broadcast = async () => {
    const id = `bare-${n++}`;
    const response = await fetch(`${url}/broadcast`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...(JSON.parse(sample) as object), id }) });
    if (response.status !== 204) throw new Error(`bare broadcast answered ${response.status}`);
    returned.set(id, now());
    return id;
  };
  return { port, url, pid: bare.pid, broadcast, returned, stop };
}

/** The bare server at 10/s behind a bare TCP relay (the gateway's piping without its checks): the cost of one more hop. */
async function relayedAtTen(context: ScenarioContext, system: RunningSystem, bare: Awaited<ReturnType<typeof startBare>>, seconds: number) {
  const relayPort = await freePort();
  const relay = startChildScript('servers/bare-proxy.ts', [String(relayPort), String(bare.port)]);
  const stopRelay = registerCleanup(() => relay.stop());
  await relay.waitFor(/^listening$/, context.signal);
  const clients = await startClients(`http://127.0.0.1:${relayPort}`, 'none', CLIENT_PROCESSES, SOCKETS / CLIENT_PROCESSES, context.signal);
  const stopClients = registerCleanup(async () => void (await clients.stop()));
  const meter = cpuMeters({ clients: () => clients.pids, relay: () => [relay.pid], 'bare server': () => [bare.pid] });
  const { summary, machine } = await bareAtTen(context, system, clients, bare.broadcast, bare.returned, seconds, 'bare Socket.IO behind a TCP relay');
  const cpu = meter();
  context.log(`  CPU during it: ${formatCpu(cpu)}`);
  await stopClients();
  await stopRelay();
  return { summary, machine, cpu };
}

export const notifications: Scenario = {
  name: 'notifications',
  title: `Notifications: ${SOCKETS.toLocaleString('en')} sockets of one department, end to end from an order; broadcast rate against bare Socket.IO`,
  built: true,
  timeLimitS: { quick: 240, full: 480 },
  async run(context) {
    const system = await context.system();
    const gateway = system.url('gateway');
    const admin = await signIn(gateway, BENCH_ADMIN);
    const [staff, recipient] = [await member(gateway, admin.headers, 'bench-member'), await member(gateway, admin.headers, 'bench-recipient')];

    const rows = context.quick ? TABLE_ROWS / 10 : TABLE_ROWS;
    context.log(`filling notifications with ${rows.toLocaleString('en')} rows…`);
    const fillMs = await fillTable(system, rows);
    const cold = await unreadCounts(gateway, recipient.headers, 1);
    const warm = await unreadCounts(gateway, recipient.headers, context.quick ? 200 : 1_000);
    context.log(`unread-count with the table filled: cold ${cold.p50Ms.toFixed(1)} ms, then p50 ${warm.p50Ms.toFixed(2)} ms, p99 ${warm.p99Ms.toFixed(2)} ms (total ${warm.total})`);
    const changed = await unreadAfterChanges(system, gateway, recipient.headers, context.quick ? 50 : 200);
    context.log(`unread-count right after a read (uncached): p50 ${changed.p50Ms.toFixed(2)} ms, p99 ${changed.p99Ms.toFixed(2)} ms`);

    const perProcess = SOCKETS / CLIENT_PROCESSES;
    context.log(`connecting ${SOCKETS} sockets through the gateway in ${CLIENT_PROCESSES} client processes…`);
    const clients = await startClients(gateway, staff.token, CLIENT_PROCESSES, perProcess, context.signal);
    const stopClients = registerCleanup(async () => void (await clients.stop()));
    const recipientSocket = await startClients(gateway, recipient.token, 1, 1, context.signal);
    const stopRecipient = registerCleanup(async () => void (await recipientSocket.stop()));

    const e2eSeconds = context.quick ? 10 : 30;
    const { endToEnd, hops, cpu: e2eCpuPercent, machine: e2eMachine, reached, sent, refused } = await endToEndAtTen(context, system, admin.headers, clients, e2eSeconds);

    // Highest sustained broadcast rate: department broadcasts created through the API.
    let n = 0;
    const broadcast = async () => {
      const response = await fetch(`${gateway}/api/v1/notifications`, {
        method: 'POST', headers: admin.headers,
        body: JSON.stringify({ department_code: DEPARTMENT, notification_type: 'BENCH', title: `Broadcast ${n++}`, message: 'A department broadcast from the bench' }),
      });
      return (await json<{ id: string }>(response, 'POST /api/v1/notifications', 201)).id;
    };
    const ours = await ramp(context, clients, broadcast, 'notification service', () => cpuOf(system, clients.pids));

    // User notifications persisted and delivered per second: closed loop, 32 at a time, to one user's socket.
    const userSeconds = context.quick ? 3 : 10;
    const userKeys: string[] = [];
    const userFailures: string[] = [];
    const userBegan = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (performance.now() - userBegan < userSeconds * 1000 && !context.signal.aborted) {
        const response = await fetch(`${gateway}/api/v1/notifications`, {
          method: 'POST', headers: admin.headers,
          body: JSON.stringify({ user_id: recipient.id, notification_type: 'BENCH', title: 'For you', message: 'A user notification from the bench' }),
        });
        if (response.status === 201) userKeys.push((await response.json() as { id: string }).id);
        else userFailures.push(`${response.status} ${await response.text()}`);
      }
    }));
    const userElapsedS = (performance.now() - userBegan) / 1000;
    const userDelivered = await recipientSocket.settle(userKeys, 5_000);
    const userRate = Math.min(userKeys.length, userDelivered) / userElapsedS;
    context.log(`user notifications: ${userKeys.length} persisted, ${userDelivered} delivered in ${userElapsedS.toFixed(1)} s (${userFailures.length} refused)`);
    await stopRecipient();
    const bulk = await bulkCreates(context, gateway, admin.headers, userSeconds);
    await stopClients();

    // Baseline: a bare Socket.IO server broadcasting to the same 1,000 sockets (same client processes' code).
    const bare = await startBare(context);
    const bareClients = await startClients(bare.url, 'none', CLIENT_PROCESSES, perProcess, context.signal);
    const stopBareClients = registerCleanup(async () => void (await bareClients.stop()));
    const { summary: bareEndToEnd, machine: bareMachine } = await bareAtTen(context, system, bareClients, bare.broadcast, bare.returned, e2eSeconds, 'bare Socket.IO');
    const baseline = await ramp(context, bareClients, bare.broadcast, 'bare Socket.IO', () => cpuMeters({ clients: () => bareClients.pids, 'bare server': () => [bare.pid] }));
    await stopBareClients();
    const { summary: relayedEndToEnd, machine: relayedMachine, cpu: relayedCpu } = await relayedAtTen(context, system, bare, e2eSeconds);
    await bare.stop();

    const deliveries = (rate: number) => rate * SOCKETS;
    const figures: Figure[] = [
      { key: 'notifications.e2e.p50', label: `order → last of ${SOCKETS} sockets, 10 orders/s for ${e2eSeconds} s: p50`, value: round(endToEnd.p50Ms, 1), unit: 'ms', note: `${reached} of ${sent} orders reached every socket; ${refused} refused` },
      { key: 'notifications.e2e.p99', label: `order → last of ${SOCKETS} sockets: p99`, value: round(endToEnd.p99Ms, 1), unit: 'ms', goal: { comparison: '<=', value: 50 } },
      { key: 'notifications.bare.e2e.p50', label: `bare Socket.IO, 10 broadcasts/s: POST returned → last of ${SOCKETS} sockets, p50`, value: round(bareEndToEnd.p50Ms, 1), unit: 'ms', isBaseline: true },
      { key: 'notifications.bare.e2e.p99', label: 'bare Socket.IO, 10 broadcasts/s: p99', value: round(bareEndToEnd.p99Ms, 1), unit: 'ms', isBaseline: true },
      { key: 'notifications.relayed.e2e.p50', label: 'bare Socket.IO behind a bare TCP relay, 10 broadcasts/s: p50', value: round(relayedEndToEnd.p50Ms, 1), unit: 'ms', isBaseline: true },
      { key: 'notifications.relayed.e2e.p99', label: 'bare Socket.IO behind a bare TCP relay, 10 broadcasts/s: p99', value: round(relayedEndToEnd.p99Ms, 1), unit: 'ms', isBaseline: true },
      { key: 'notifications.bare.deliveries', label: `bare Socket.IO: highest sustained broadcast rate to ${SOCKETS} sockets`, value: deliveries(baseline.sustained), unit: 'deliveries/s', isBaseline: true },
      {
        key: 'notifications.deliveries', label: `notification service: highest sustained broadcast rate to ${SOCKETS} sockets`, value: deliveries(ours.sustained), unit: 'deliveries/s',
        baseline: { name: 'bare Socket.IO', value: deliveries(baseline.sustained) }, goal: { comparison: '>=', value: round(deliveries(baseline.sustained) * 0.8, 0) },
        note: `${ours.sustained} broadcasts/s (bare: ${baseline.sustained}/s); ramp ${RAMP.join(', ')}/s, ${context.quick ? 2 : 4} s each`,
      },
      { key: 'notifications.user.rate', label: 'user notifications persisted and delivered, one recipient per POST (32 concurrent POSTs)', value: round(userRate, 0), unit: 'notifications/s', note: 'one notification per request: this is also the request rate' },
      {
        key: 'notifications.user.bulk.rate', label: `user notifications persisted and delivered, ${BULK_RECIPIENTS} recipients per POST /api/v1/notifications/bulk (32 concurrent POSTs)`, value: round(bulk.notificationsPerSecond, 0), unit: 'notifications/s',
        goal: { comparison: '>=', value: 1_000 }, note: 'the goal is measured on notifications (rows persisted and each delivered to its recipient\'s socket), not on requests',
      },
      { key: 'notifications.user.bulk.requests', label: `multi-recipient creates (${BULK_RECIPIENTS} recipients each): requests answered`, value: round(bulk.requestsPerSecond, 0), unit: 'requests/s' },
      { key: 'notifications.unread.p99', label: `unread-count through the gateway, ${(context.quick ? TABLE_ROWS / 10 : TABLE_ROWS).toLocaleString('en')} notifications in the table: p99`, value: round(warm.p99Ms, 2), unit: 'ms', goal: { comparison: '<=', value: 5 } },
      { key: 'notifications.unread.p50', label: 'unread-count through the gateway: p50', value: round(warm.p50Ms, 2), unit: 'ms' },
      { key: 'notifications.unread.cold', label: 'unread-count, first (uncached) count', value: round(cold.p50Ms, 1), unit: 'ms', note: `${warm.total} unread in the department` },
      { key: 'notifications.unread.changed.p99', label: 'unread-count right after a read of a broadcast (uncached, one less each time): p99', value: round(changed.p99Ms, 2), unit: 'ms', note: `p50 ${round(changed.p50Ms, 2)} ms over ${changed.count}` },
    ];
    return {
      figures,
      details: { endToEnd, hops, e2eCpu: e2eCpuPercent, e2eMachine, bareEndToEnd, bareMachine, relayed: { endToEnd: relayedEndToEnd, machine: relayedMachine, cpu: relayedCpu }, loadAverage: loadavg(), reached, sent, ordersRefused: refused, userRefused: userFailures.length, ours: ours.steps, baseline: baseline.steps, user: { persisted: userKeys.length, delivered: userDelivered, seconds: userElapsedS }, bulk, unread: { cold, warm, changed }, fillMs },
      notes: [
        `${SOCKETS} sockets of one staff member of ${DEPARTMENT}, websocket only, through the gateway, in ${CLIENT_PROCESSES} client processes (socket-clients.ts); a notification counts as delivered once the last socket has it (times on the machine's monotonic clock, shared by the processes).`,
        'End to end: POST /api/v1/orders through the gateway returning → core\'s outbox → the event feed → the notification consumer\'s insert → LISTEN/NOTIFY → Socket.IO emit → the last socket. Broadcast ramp: department broadcasts created by POST /api/v1/notifications; a step is sustained when every broadcast reached every socket within 1 s after it. The bare server gets the same ramp over POST /broadcast and the same clients.',
        `Unread count: ${warm.total} unread broadcasts for the member; the served count is the in-process badge cache (exact, invalidated on every change); the first, uncached count is reported beside it.`,
        'Hops (details.hops) come from the databases\' own timestamps on the same wall clock: core\'s outbox row (its transaction\'s start), the POST returning, the consumer\'s transaction (applied_events.applied_at), the insert (created_at), the first socket, the last socket. CPU per process group (details.e2eCpu, and per ramp step) is from /proc, as % of one core; the client processes\' own CPU is reported so that a saturated client shows.',
        'The machine (2 cores) is shared with other work and the clients, the bench, the system and PostgreSQL all run on it: the figures are noisy. During the end to end run and the bare one, a probe measures what the machine makes anything wait (a 100 ms timer\'s lateness, a SELECT 1 round trip); the bare server at the same 10/s to the same clients is the floor of a 1,000-socket fan-out on this machine at that moment.',
      ],
    };
  },
};

/**
 * The end to end part alone, for working on it: the same 1,000 sockets and 10 orders/s with its
 * hops, then the bare server behind a bare TCP relay at the same rate (the floor, in the same minute).
 */
export const notificationsEndToEnd: Scenario = {
  name: 'notifications-e2e',
  title: `Notifications, end to end only: order → last of ${SOCKETS.toLocaleString('en')} sockets at 10 orders/s, against bare Socket.IO behind a TCP relay`,
  built: true,
  timeLimitS: { quick: 120, full: 180 },
  onlyWhenNamed: true,
  async run(context) {
    const system = await context.system();
    const gateway = system.url('gateway');
    const admin = await signIn(gateway, BENCH_ADMIN);
    const staff = await member(gateway, admin.headers, 'bench-member');
    const seconds = context.quick ? 10 : 30;
    const clients = await startClients(gateway, staff.token, CLIENT_PROCESSES, SOCKETS / CLIENT_PROCESSES, context.signal);
    const stopClients = registerCleanup(async () => void (await clients.stop()));
    const ours = await endToEndAtTen(context, system, admin.headers, clients, seconds);
    await stopClients();
    const bare = await startBare(context);
    const relayed = await relayedAtTen(context, system, bare, seconds);
    await bare.stop();
    return {
      figures: [
        { key: 'notifications-e2e.p50', label: `order → last of ${SOCKETS} sockets, 10 orders/s for ${seconds} s: p50`, value: round(ours.endToEnd.p50Ms, 1), unit: 'ms', note: `${ours.reached} of ${ours.sent} orders reached every socket; ${ours.refused} refused` },
        { key: 'notifications-e2e.p99', label: `order → last of ${SOCKETS} sockets: p99`, value: round(ours.endToEnd.p99Ms, 1), unit: 'ms', goal: { comparison: '<=', value: 50 } },
        { key: 'notifications-e2e.relayed.p50', label: 'bare Socket.IO behind a bare TCP relay, 10 broadcasts/s: p50', value: round(relayed.summary.p50Ms, 1), unit: 'ms', isBaseline: true },
        { key: 'notifications-e2e.relayed.p99', label: 'bare Socket.IO behind a bare TCP relay, 10 broadcasts/s: p99', value: round(relayed.summary.p99Ms, 1), unit: 'ms', isBaseline: true },
      ],
      details: { ours, relayed, loadAverage: loadavg() },
    };
  },
};
