import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { freePort } from '@archipelago/platform';
import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { startChildScript } from '../lib/child-script.ts';
import { registerCleanup } from '../lib/cleanup.ts';
import { LatencyRecorder } from '../lib/latency.ts';
import { round } from '../lib/stats.ts';
import { BENCH_ADMIN, type RunningSystem } from '../lib/system.ts';
import { measureUnread } from './unread.ts';
import { type Clients, type Headers, atRate, cpuMeters, cpuOf, formatCpu, formatHops, formatProbe, hopsOf, json, member, now, probeMachine, ramp, signIn, startClients, wallNow, DEPARTMENT, RAMP, SOCKETS } from '../lib/socket-load.ts';

const CLIENT_PROCESSES = 2;

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
  const metered = performance.now();
  const probe = await probeMachine(system);
  const orders = await atRate(10, seconds, order, context.signal);
  const reached = await clients.settle(orders.keys, 10_000);
  const cpu = meter();
  // CPU per order is what a change to the fan-out moves, whatever else the machine is doing.
  const cpuMsPerOrder = Object.fromEntries(Object.entries(cpu).map(([name, percent]) => [name, round(((percent / 100) * (performance.now() - metered)) / Math.max(1, orders.keys.length), 1)]));
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
  context.log(`  CPU per order (ms): ${Object.entries(cpuMsPerOrder).map(([name, ms]) => `${name} ${ms}`).join(', ')}`);
  return { endToEnd, hops, cpu, cpuMsPerOrder, machine, reached, sent: orders.keys.length, refused: orders.failed.length };
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

    const unread = await measureUnread(context, system, recipient.headers, 'notifications.unread');

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
      ...unread.figures,
    ];
    return {
      figures,
      details: { endToEnd, hops, e2eCpu: e2eCpuPercent, e2eMachine, bareEndToEnd, bareMachine, relayed: { endToEnd: relayedEndToEnd, machine: relayedMachine, cpu: relayedCpu }, loadAverage: loadavg(), reached, sent, ordersRefused: refused, userRefused: userFailures.length, ours: ours.steps, baseline: baseline.steps, user: { persisted: userKeys.length, delivered: userDelivered, seconds: userElapsedS }, bulk, unread: unread.details },
      notes: [
        `${SOCKETS} sockets of one staff member of ${DEPARTMENT}, websocket only, through the gateway, in ${CLIENT_PROCESSES} client processes (socket-clients.ts); a notification counts as delivered once the last socket has it (times on the machine's monotonic clock, shared by the processes).`,
        'End to end: POST /api/v1/orders through the gateway returning → core\'s outbox → the event feed → the notification consumer\'s insert → LISTEN/NOTIFY → Socket.IO emit → the last socket. Broadcast ramp: department broadcasts created by POST /api/v1/notifications; a step is sustained when every broadcast reached every socket within 1 s after it. The bare server gets the same ramp over POST /broadcast and the same clients.',
        unread.note,
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
