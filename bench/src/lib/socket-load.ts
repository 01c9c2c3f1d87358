import { performance } from 'node:perf_hooks';
import type { ScenarioContext } from '../scenario.ts';
import { startChildScript, type ChildScript } from './child-script.ts';
import { LatencyRecorder } from './latency.ts';
import { CpuMeter } from './proc.ts';
import { round } from './stats.ts';
import type { RunningSystem } from './system.ts';
import { connect } from '../scenarios/baselines.ts';

// The load side of the notification scenarios: socket client processes, paced senders, and where an order's time goes.
export const SOCKETS = 1_000;
export const DEPARTMENT = 'LAB';
export const RAMP = [10, 20, 40, 80, 160, 320, 640];

export const now = () => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export type Headers = Record<string, string>;
/** What one client process reports of a notification: when its last and first socket had it. */
export interface Arrival { readonly last: number; readonly first: number; readonly firstWall: number }
export const wallNow = () => performance.timeOrigin + performance.now();

export async function json<T>(response: Response, what: string, status = 200): Promise<T> {
  if (response.status !== status) throw new Error(`${what} answered ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function signIn(gateway: string, credentials: { email: string; password: string }): Promise<{ token: string; headers: Headers }> {
  const response = await fetch(`${gateway}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
  const { accessToken } = await json<{ accessToken: string }>(response, 'sign-in');
  return { token: accessToken, headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' } };
}

/** A staff member of the department, created by the administrator, signed in. */
export async function member(gateway: string, admin: Headers, name: string) {
  const credentials = { email: `${name}-${Date.now()}@bench.example`, password: 'bench member password 1' };
  const created = await fetch(`${gateway}/api/v1/users`, {
    method: 'POST', headers: admin,
    body: JSON.stringify({ ...credentials, display_name: name, department_code: DEPARTMENT, roles: ['staff'] }),
  });
  const { id } = await json<{ id: string }>(created, `creating ${name}`, 201);
  return { id, ...(await signIn(gateway, credentials)) };
}

/** The department's 1,000 sockets, over client processes; `done` is told when a key reached them all. */
export async function startClients(url: string, token: string, processes: number, perProcess: number, signal: AbortSignal) {
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

export type Clients = Awaited<ReturnType<typeof startClients>>;

/** Sends `send(i)` at `rate` per second for `seconds` (open loop, at most 256 in flight); returns the keys sent and the rate they left at. */
export async function atRate(rate: number, seconds: number, send: (i: number) => Promise<string>, signal: AbortSignal): Promise<{ keys: string[]; sentPerSecond: number; failed: string[] }> {
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
export async function ramp(context: ScenarioContext, clients: Clients, broadcast: (i: number) => Promise<string>, what: string, cpu: () => () => Record<string, number>) {
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
/** Milliseconds between two wall-clock moments of each order's path, summarised per hop. */
export type Hops = Record<string, ReturnType<LatencyRecorder['summary']>>;

/**
 * Where an order's end to end goes, from the databases' own timestamps (same machine, same wall
 * clock): core's outbox row (its transaction's start), the POST returning, the notification
 * consumer's transaction applying the event (applied_events.applied_at, its start), the insert
 * (created_at, taken under the insert lock), the first socket and the last one.
 */
export async function hopsOf(system: RunningSystem, clients: Clients, returned: ReadonlyMap<string, { at: number; wall: number }>): Promise<Hops> {
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
export function cpuMeters(groups: Record<string, () => readonly number[]>) {
  const meters = Object.entries(groups).map(([name, pids]) => [name, new CpuMeter(pids)] as const);
  return () => Object.fromEntries(meters.map(([name, meter]) => [name, round(meter.read().percentOfOneCore, 0)]));
}

/** CPU of the processes on the path, and of the clients. */
export function cpuOf(system: RunningSystem, clientPids: readonly number[]) {
  const services = system.servicePids();
  return cpuMeters({
    clients: () => clientPids,
    gateway: () => [services.get('gateway') ?? 0],
    notification: () => [services.get('notification') ?? 0],
    core: () => [services.get('core') ?? 0],
    postgres: () => system.postgresTree(),
  });
}

export const formatCpu = (cpu: Record<string, number>) => Object.entries(cpu).map(([name, percent]) => `${name} ${percent}%`).join(', ');
export const formatHops = (hops: Hops) => Object.entries(hops).map(([hop, s]) => `${hop} p50 ${s.p50Ms.toFixed(1)} / p99 ${s.p99Ms.toFixed(1)} ms`).join('; ');

/**
 * How long the machine makes anything wait while a phase runs: every 100 ms, a timer's lateness in
 * the bench process and one `SELECT 1` round trip to PostgreSQL. On an idle machine both are well
 * under a millisecond; what they are during the run is a floor under every hop above.
 */
export async function probeMachine(system: RunningSystem) {
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

export const formatProbe = (probe: Awaited<ReturnType<Awaited<ReturnType<typeof probeMachine>>>>) =>
  `a 100 ms timer late by p50 ${probe.timerLateness.p50Ms.toFixed(1)} / p99 ${probe.timerLateness.p99Ms.toFixed(1)} ms, SELECT 1 round trip p50 ${probe.postgresRoundTrip.p50Ms.toFixed(1)} / p99 ${probe.postgresRoundTrip.p99Ms.toFixed(1)} ms`;
