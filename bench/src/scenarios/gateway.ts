import type { Figure, LatencySeries, Scenario, ScenarioContext } from '../scenario.ts';
import { startBareServer } from '../lib/bare-server.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import { CpuMeter, totalMemory } from '../lib/proc.ts';
import { MB, round } from '../lib/stats.ts';
import { BENCH_ADMIN, type RunningSystem } from '../lib/system.ts';

const PATH = '/api/v1/labels/MR';
const CONNECTIONS = 10;

type TargetName = 'bare' | 'direct' | 'gateway';
type Unloaded = Record<'direct' | 'gateway', TargetRun>;

interface Target {
  readonly name: TargetName;
  readonly title: string;
  readonly url: string;
  /** The server processes whose CPU and memory this target's run is about. */
  readonly processes: Record<string, () => readonly number[]>;
}

interface ProcessUsage {
  readonly cpuSeconds: number;
  readonly percentOfOneCore: number;
  readonly cpuMicrosecondsPerRequest: number;
  /** Highest RSS and PSS sampled once a second during the run (sums, for several processes). */
  readonly maxRssMB: number;
  readonly maxPssMB: number | null;
}

interface TargetRun {
  readonly target: TargetName;
  readonly load: LoadResult;
  readonly usage: Record<string, ProcessUsage>;
  /** CPU of this bench process, which generates the load on the same two cores. */
  readonly loadGeneratorPercentOfOneCore: number;
}

/** Signs in through the gateway; the bench's requests carry this access token. */
export async function signIn(system: RunningSystem): Promise<Record<string, string>> {
  const response = await fetch(`${system.url('gateway')}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(BENCH_ADMIN),
  });
  if (response.status !== 200) throw new Error(`sign-in through the gateway answered ${response.status} ${await response.text()}`);
  return { authorization: `Bearer ${((await response.json()) as { accessToken: string }).accessToken}` };
}

async function checkTarget(target: Target, headers: Record<string, string>): Promise<void> {
  const response = await fetch(target.url, { headers });
  const body = (await response.json()) as { code?: string };
  if (response.status !== 200 || body.code !== 'MR') throw new Error(`GET ${target.url} answered ${response.status} ${JSON.stringify(body)}`);
}

interface Meter {
  readonly name: string;
  readonly pids: () => readonly number[];
  readonly cpu: CpuMeter;
  maxRss: number;
  maxPss: number | null;
}

async function measure(target: Target, connections: number, durationS: number, context: ScenarioContext, headers: Record<string, string>): Promise<TargetRun> {
  const meters = Object.entries(target.processes).map(([name, pids]): Meter => ({ name, pids, cpu: new CpuMeter(pids), maxRss: 0, maxPss: 0 }));
  const sampleMemory = (): void => {
    for (const meter of meters) {
      const memory = totalMemory(meter.pids());
      meter.maxRss = Math.max(meter.maxRss, memory.rssBytes);
      meter.maxPss = meter.maxPss === null || memory.pssBytes === null ? null : Math.max(meter.maxPss, memory.pssBytes);
    }
  };
  const ownCpu = process.cpuUsage();
  const load = await runLoad({ url: target.url, connections, durationS, signal: context.signal, onTick: sampleMemory, headers });
  sampleMemory();
  const own = process.cpuUsage(ownCpu);
  if (load.responses === 0) throw new Error(`no successful response from ${target.url}`);
  const usage: Record<string, ProcessUsage> = {};
  for (const meter of meters) {
    const cpu = meter.cpu.read();
    usage[meter.name] = {
      ...cpu,
      cpuMicrosecondsPerRequest: (cpu.cpuSeconds * 1e6) / load.responses,
      maxRssMB: meter.maxRss / MB,
      maxPssMB: meter.maxPss === null ? null : meter.maxPss / MB,
    };
  }
  if (load.non2xx + load.errors > 0) context.log(`${target.title}: ${load.non2xx} non-2xx responses, ${load.errors} errors`);
  context.log(`${target.title}, ${connections} connection(s): ${Math.round(load.requestsPerSecond)} req/s, p50 ${load.latency.p50Ms.toFixed(3)} ms, p99 ${load.latency.p99Ms.toFixed(3)} ms`);
  return { target: target.name, load, usage, loadGeneratorPercentOfOneCore: ((own.user + own.system) / 1e6 / load.wallSeconds) * 100 };
}

function targets(system: RunningSystem, bareUrl: string, barePid: number): Target[] {
  const pids = system.servicePids();
  const pid = (key: string): (() => number[]) => () => [pids.get(key) ?? 0];
  const postgres = (): number[] => system.postgresTree();
  return [
    { name: 'bare', title: 'bare node:http', url: `${bareUrl}${PATH}`, processes: { server: () => [barePid] } },
    { name: 'direct', title: 'masterdata direct', url: `${system.url('masterdata')}${PATH}`, processes: { masterdata: pid('masterdata'), postgres } },
    { name: 'gateway', title: 'through the gateway', url: `${system.url('gateway')}${PATH}`, processes: { gateway: pid('gateway'), masterdata: pid('masterdata'), postgres } },
  ];
}

function latencyFigures(run: TargetRun, title: string, bare: TargetRun | undefined): Figure[] {
  const { latency } = run.load;
  const baseline = (value: number | undefined): Pick<Figure, 'baseline' | 'isBaseline'> =>
    bare && value !== undefined ? { baseline: { name: 'bare node:http', value } } : { isBaseline: true };
  const key = `gateway.${run.target}`;
  return [
    { key: `${key}.p50`, label: `${title}: latency p50`, value: round(latency.p50Ms, 3), unit: 'ms', ...baseline(bare?.load.latency.p50Ms) },
    { key: `${key}.p95`, label: `${title}: latency p95`, value: round(latency.p95Ms, 3), unit: 'ms', ...baseline(bare?.load.latency.p95Ms) },
    { key: `${key}.p99`, label: `${title}: latency p99`, value: round(latency.p99Ms, 3), unit: 'ms', ...baseline(bare?.load.latency.p99Ms) },
    { key: `${key}.rps`, label: `${title}: throughput`, value: Math.round(run.load.requestsPerSecond), unit: 'req/s', ...baseline(bare?.load.requestsPerSecond) },
  ];
}

function usageFigures(run: TargetRun, title: string, bare: TargetRun): Figure[] {
  const bareCpu = bare.usage.server!.cpuMicrosecondsPerRequest;
  return Object.entries(run.usage).flatMap(([name, usage]): Figure[] => {
    const who = run.target === 'bare' ? title : `${title}: ${name}`;
    const key = `gateway.${run.target}.${name}`;
    const cpuPerRequest: Figure = {
      key: `${key}.cpu-per-request`,
      label: `${who} CPU per request`,
      value: round(usage.cpuMicrosecondsPerRequest, 1),
      unit: 'CPU µs',
      ...(run.target === 'bare' ? { isBaseline: true } : name === 'postgres' ? {} : { baseline: { name: 'bare node:http', value: bareCpu } }),
    };
    return [
      { key: `${key}.cpu`, label: `${who} CPU`, value: round(usage.percentOfOneCore, 1), unit: '% of a core' },
      cpuPerRequest,
      // PostgreSQL's shared buffers appear in the RSS of every backend: PSS counts them once.
      name === 'postgres' && usage.maxPssMB !== null
        ? { key: `${key}.pss`, label: `${who} PSS, all processes (max during run)`, value: round(usage.maxPssMB, 1), unit: 'MB' }
        : { key: `${key}.rss`, label: `${who} RSS (max during run)`, value: round(usage.maxRssMB, 1), unit: 'MB' },
    ];
  });
}

/** One connection, no queueing: the latency the gateway's hop adds by itself. */
function unloadedFigures(unloaded: Unloaded): Figure[] {
  const { direct, gateway } = unloaded;
  return [
    { key: 'gateway.unloaded.gateway.p50', label: 'gateway, 1 connection: latency p50', value: round(gateway.load.latency.p50Ms, 3), unit: 'ms', baseline: { name: 'direct, 1 connection', value: direct.load.latency.p50Ms } },
    { key: 'gateway.unloaded.direct.p50', label: 'masterdata direct, 1 connection: latency p50', value: round(direct.load.latency.p50Ms, 3), unit: 'ms' },
    {
      key: 'gateway.unloaded.added-p50',
      label: 'gateway added latency at p50, 1 connection (gateway − direct)',
      value: round(gateway.load.latency.p50Ms - direct.load.latency.p50Ms, 3),
      unit: 'ms',
      note: 'informative: the goal applies to the 10-connection figure',
    },
  ];
}

function figures(runs: Record<TargetName, TargetRun>, unloaded: Unloaded): Figure[] {
  const { bare, direct, gateway } = runs;
  return [
    ...latencyFigures(gateway, 'gateway', bare),
    ...latencyFigures(direct, 'masterdata direct', bare),
    ...latencyFigures(bare, 'bare node:http', undefined),
    {
      key: 'gateway.added-p50',
      label: 'gateway added latency at p50 (gateway − direct)',
      value: round(gateway.load.latency.p50Ms - direct.load.latency.p50Ms, 3),
      unit: 'ms',
      goal: { comparison: '<=', value: 1 },
    },
    { key: 'gateway.added-p99', label: 'gateway added latency at p99 (gateway − direct)', value: round(gateway.load.latency.p99Ms - direct.load.latency.p99Ms, 3), unit: 'ms' },
    {
      key: 'gateway.throughput-ratio',
      label: 'gateway throughput / direct throughput',
      value: round((100 * gateway.load.requestsPerSecond) / direct.load.requestsPerSecond, 1),
      unit: '%',
      goal: { comparison: '>=', value: 50 },
    },
    ...unloadedFigures(unloaded),
    ...usageFigures(gateway, 'gateway run', bare),
    ...usageFigures(direct, 'direct run', bare),
    ...usageFigures(bare, 'bare node:http', bare),
  ];
}

interface LoginRun {
  readonly load: LoadResult;
  readonly connections: number;
  readonly iamCpu: { readonly percentOfOneCore: number; readonly cpuMillisecondsPerLogin: number };
}

/** Sign-ins through the gateway: argon2id verification (m = 19 MiB, t = 2) dominates. */
async function measureLogins(system: RunningSystem, durationS: number, context: ScenarioContext): Promise<LoginRun> {
  const connections = 4;
  const iamPid = system.servicePids().get('iam') ?? 0;
  const cpu = new CpuMeter(() => [iamPid]);
  const load = await runLoad({ url: `${system.url('gateway')}/api/v1/auth/login`, connections, durationS, signal: context.signal, jsonBody: BENCH_ADMIN });
  if (load.responses === 0) throw new Error('no successful sign-in');
  const used = cpu.read();
  context.log(`sign-in through the gateway, ${connections} connections: ${load.requestsPerSecond.toFixed(1)} logins/s, p50 ${load.latency.p50Ms.toFixed(1)} ms`);
  return { load, connections, iamCpu: { percentOfOneCore: used.percentOfOneCore, cpuMillisecondsPerLogin: (used.cpuSeconds * 1e3) / load.responses } };
}

function loginFigures(run: LoginRun): Figure[] {
  return [
    { key: 'gateway.login.rps', label: `sign-in through the gateway, ${run.connections} connections: throughput`, value: round(run.load.requestsPerSecond, 1), unit: 'logins/s' },
    { key: 'gateway.login.p50', label: 'sign-in: latency p50', value: round(run.load.latency.p50Ms, 1), unit: 'ms' },
    { key: 'gateway.login.p99', label: 'sign-in: latency p99', value: round(run.load.latency.p99Ms, 1), unit: 'ms' },
    { key: 'gateway.login.iam-cpu', label: 'sign-in: iam CPU', value: round(run.iamCpu.percentOfOneCore, 1), unit: '% of a core' },
    { key: 'gateway.login.iam-cpu-per-login', label: 'sign-in: iam CPU per login', value: round(run.iamCpu.cpuMillisecondsPerLogin, 1), unit: 'CPU ms' },
  ];
}

export const gateway: Scenario = {
  name: 'gateway',
  title: `Gateway: authenticated GET ${PATH}; sign-in`,
  built: true,
  timeLimitS: { quick: 120, full: 240 },
  async run(context) {
    const durationS = context.quick ? 5 : 15;
    const unloadedS = context.quick ? 2 : 5;
    const warmupS = context.quick ? 1 : 3;
    const system = await context.system();
    const headers = await signIn(system);
    const bare = await startBareServer(context.signal);
    const runs: Partial<Record<TargetName, TargetRun>> = {};
    const unloaded: Partial<Unloaded> = {};
    const series: LatencySeries[] = [];
    try {
      for (const target of targets(system, bare.url, bare.pid)) {
        await checkTarget(target, headers);
        await runLoad({ url: target.url, connections: CONNECTIONS, durationS: warmupS, signal: context.signal, headers });
        const run = await measure(target, CONNECTIONS, durationS, context, headers);
        runs[target.name] = run;
        series.push({ name: target.title, points: run.load.series });
        if (target.name !== 'bare') unloaded[target.name] = await measure(target, 1, unloadedS, context, headers);
      }
    } finally {
      await bare.stop();
    }
    const logins = await measureLogins(system, context.quick ? 3 : 8, context);
    const complete = runs as Record<TargetName, TargetRun>;
    return {
      figures: [...figures(complete, unloaded as Unloaded), ...loginFigures(logins)],
      series,
      details: { path: PATH, connections: CONNECTIONS, durationSeconds: durationS, warmupSeconds: warmupS, unloadedSeconds: unloadedS, runs: complete, unloaded, logins },
      notes: [
        `Each target gets ${warmupS} s of warm-up, then ${durationS} s of load from autocannon (${CONNECTIONS} keep-alive connections, no pipelining) running in the bench process, on the same 2 cores as the servers under test.`,
        `At ${CONNECTIONS} connections every server is saturated (latency ≈ connections / throughput), so the added p50 there mostly reflects the gateway's CPU cost on 2 shared cores; the 1-connection runs (${unloadedS} s each) show the latency of the extra hop alone.`,
        'Latency is taken per response (autocannon `response` event, microseconds) into an HDR histogram; throughput counts 2xx responses.',
        'Every request carries `Authorization: Bearer <access token>` (EdDSA JWT from a sign-in through the gateway). The gateway verifies it (JWKS cached from IAM, role map cached 30 s) and counts two rate limits (per address, per user; in memory, limits raised so they never trigger). Masterdata verifies the token too (as every service does), so the direct run pays its own verification; the gateway adds a second check, the rate limits and the extra hop.',
        'Sign-in: POST /api/v1/auth/login through the gateway on 4 connections; each one verifies an argon2id hash (m = 19 MiB, t = 2, p = 1), creates a session and signs a token. The hash is not weakened for the bench.',
        'CPU is utime+stime from /proc/<pid>/stat over the measured run; "postgres" is the postmaster and all its backends.',
      ],
    };
  },
};
