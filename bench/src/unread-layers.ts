/**
 * Where one cached `GET /api/v1/notifications/unread-count` spends its CPU, per process, for work
 * on it on a machine too busy for the scenario's latencies to mean anything:
 * `node --import tsx bench/src/unread-layers.ts [requests per run] [rounds]` (default 3,000 × 3).
 * Starts the system (built dist/) on a fresh data directory, fills the table (100,000 rows, as
 * `--quick`), signs a member of LAB in, then per round sends the requests one after another through
 * the gateway and directly to the notification service, each with undici's fetch and with node:http
 * on one kept-alive connection (the bench's client), in turn. Reported per run: p50/p99 and CPU µs
 * per request of the gateway, notification, IAM, PostgreSQL (all backends) and this process, from
 * /proc (10 ms ticks: CPU over a run, divided by its requests); then medians over the rounds.
 */
import { performance } from 'node:perf_hooks';
import { runAllCleanups } from './lib/cleanup.ts';
import { LatencyRecorder } from './lib/latency.ts';
import { readStat, ticksToSeconds } from './lib/proc.ts';
import { json, member, signIn, type Headers } from './lib/socket-load.ts';
import { median } from './lib/stats.ts';
import { BENCH_ADMIN, buildDist, RunningSystem } from './lib/system.ts';
import { makeDataDir } from './lib/temp.ts';
import { fillTable, leanClient } from './scenarios/unread.ts';

const [requestsArg = '3000', roundsArg = '3'] = process.argv.slice(2);
const REQUESTS = Number(requestsArg);
const ROUNDS = Number(roundsArg);
const PROCESSES = ['gateway', 'notification', 'iam', 'postgres', 'bench'] as const;
type Cpu = Record<(typeof PROCESSES)[number], number>;

async function main(): Promise<void> {
  await buildDist();
  const dir = await makeDataDir('unread-layers');
  const { system } = await RunningSystem.start(dir.path, AbortSignal.timeout(300_000));
  const lean = leanClient();
  try {
    const gateway = system.url('gateway');
    const direct = system.url('notification');
    const admin = await signIn(gateway, BENCH_ADMIN);
    const recipient = await member(gateway, admin.headers, 'unread-layers');
    await fillTable(system, 100_000);
    const headers: Headers = { authorization: recipient.headers.authorization! };
    const pids = system.servicePids();
    const ticks = (): Cpu => {
      const of = (pid: number | undefined) => (pid === undefined ? 0 : (readStat(pid)?.ownTicks ?? 0));
      return {
        gateway: of(pids.get('gateway')),
        notification: of(pids.get('notification')),
        iam: of(pids.get('iam')),
        // Backends come and go: a run's sum can be off by the ticks of one that ended during it.
        postgres: system.postgresTree().reduce((sum, pid) => sum + of(pid), 0),
        bench: of(process.pid),
      };
    };
    const viaFetch = async (url: string) => void (await json(await fetch(url, { headers }), 'unread-count'));
    const viaLean = async (url: string) => void (await lean.get(url, headers, 'unread-count'));
    const runs = [
      { name: 'gateway, fetch', url: `${gateway}/api/v1/notifications/unread-count`, send: viaFetch },
      { name: 'gateway, node:http', url: `${gateway}/api/v1/notifications/unread-count`, send: viaLean },
      { name: 'direct, fetch', url: `${direct}/api/v1/notifications/unread-count`, send: viaFetch },
      { name: 'direct, node:http', url: `${direct}/api/v1/notifications/unread-count`, send: viaLean },
    ];
    const began = performance.now();
    await viaLean(runs[0]!.url);
    console.log(`first (uncached) count through the gateway: ${(performance.now() - began).toFixed(1)} ms`);
    for (const run of runs) for (let i = 0; i < 300; i++) await run.send(run.url); // warm-up
    const results = new Map(runs.map((run) => [run.name, [] as { p50: number; p99: number; cpu: Cpu }[]]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
        const recorder = new LatencyRecorder();
        const before = ticks();
        for (let i = 0; i < REQUESTS; i++) {
          const sent = performance.now();
          await run.send(run.url);
          recorder.record(performance.now() - sent);
        }
        const after = ticks();
        const cpu = Object.fromEntries(PROCESSES.map((name) => [name, Math.round((ticksToSeconds(after[name] - before[name]) * 1e6) / REQUESTS)])) as Cpu;
        const { p50Ms, p99Ms } = recorder.summary();
        results.get(run.name)!.push({ p50: p50Ms, p99: p99Ms, cpu });
        console.log(`round ${round + 1} ${run.name.padEnd(18)} p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms, CPU µs/request ${JSON.stringify(cpu)}`);
      }
    }
    console.log(`\nmedians over ${ROUNDS} rounds of ${REQUESTS}:`);
    for (const [name, rounds] of results) {
      const cpu = PROCESSES.map((process) => `${process} ${median(rounds.map((r) => r.cpu[process]))}`).join(', ');
      console.log(`${name.padEnd(18)} p50 ${median(rounds.map((r) => r.p50)).toFixed(2)} ms, p99 ${median(rounds.map((r) => r.p99)).toFixed(2)} ms; CPU µs/request: ${cpu}`);
    }
  } finally {
    lean.close();
    await system.stop();
    await dir.remove();
    await runAllCleanups(() => undefined);
  }
}

await main();
