import type { Figure, Scenario, ScenarioContext } from '../scenario.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import { CpuMeter, machineBusy } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import { RunningSystem } from '../lib/system.ts';
import { makeDataDir } from '../lib/temp.ts';
import { signIn } from './gateway.ts';

const CONNECTIONS = 16;
const ORDER = { item_name: 'Bench order', department_code: 'LAB' };

interface ProcessCpu {
  readonly name: string;
  readonly percentOfOneCore: number;
  readonly cpuMillisecondsPerOrder: number;
}

interface Run {
  readonly cores: number;
  readonly load: LoadResult;
  readonly processes: readonly ProcessCpu[];
  /** Busy share of both CPUs during the load, from /proc/stat (everything on the machine). */
  readonly machineBusy: number;
}

/**
 * POST /api/v1/orders through the gateway against `cores` core instances, on a system started
 * for it (ARCHIPELAGO_INSTANCES=core=<n>): orders/s and latency with autocannon, and the CPU each
 * process used (from /proc/<pid>/stat), so the one that saturates is named.
 */
async function measure(cores: number, dataDir: string, context: ScenarioContext): Promise<Run> {
  const { system } = await RunningSystem.start(dataDir, context.signal, { env: { ARCHIPELAGO_INSTANCES: `core=${cores}` } });
  try {
    const headers = await signIn(system);
    const url = `${system.url('gateway')}/api/v1/orders`;
    await runLoad({ url, connections: CONNECTIONS, durationS: 3, signal: context.signal, headers, jsonBody: ORDER }); // warm-up
    const services = [...system.servicePids()];
    const meters = [
      ...services.map(([name, pid]) => ({ name, cpu: new CpuMeter(() => [pid]) })),
      { name: 'postgres', cpu: new CpuMeter(() => system.postgresTree()) },
    ];
    const ownCpu = process.cpuUsage();
    const busy = machineBusy(context.quick ? 5_000 : 15_000);
    const load = await runLoad({ url, connections: CONNECTIONS, durationS: context.quick ? 5 : 15, signal: context.signal, headers, jsonBody: ORDER });
    const own = process.cpuUsage(ownCpu);
    if (load.responses === 0) throw new Error(`no order was created (${load.non2xx} non-2xx responses, ${load.errors} errors)`);
    const loadSeconds = load.responses / load.requestsPerSecond;
    const processes: ProcessCpu[] = [
      ...meters.map(({ name, cpu }) => {
        const used = cpu.read();
        return { name, percentOfOneCore: used.percentOfOneCore, cpuMillisecondsPerOrder: (used.cpuSeconds * 1e3) / load.responses };
      }),
      { name: 'bench (autocannon)', percentOfOneCore: ((own.user + own.system) / 1e4) / loadSeconds, cpuMillisecondsPerOrder: (own.user + own.system) / 1e3 / load.responses },
    ].sort((a, b) => b.percentOfOneCore - a.percentOfOneCore);
    const run: Run = { cores, load, processes, machineBusy: await busy };
    context.log(`${cores} core instance${cores === 1 ? '' : 's'}: ${Math.round(load.requestsPerSecond)} orders/s, p50 ${load.latency.p50Ms.toFixed(1)} ms, p99 ${load.latency.p99Ms.toFixed(1)} ms (${load.non2xx} non-2xx); CPU ${processes.slice(0, 5).map((p) => `${p.name} ${Math.round(p.percentOfOneCore)} %`).join(', ')}; machine ${Math.round(run.machineBusy * 100)} % busy`);
    return run;
  } finally {
    await system.stop();
  }
}

function figures(runs: readonly Run[]): Figure[] {
  const [one] = runs;
  return runs.flatMap((run): Figure[] => {
    const who = `${run.cores} core instance${run.cores === 1 ? '' : 's'}`;
    const top = run.processes[0]!;
    return [
      {
        key: `instances.core-${run.cores}.orders`,
        label: `POST /api/v1/orders through the gateway, ${who}: orders/s`,
        value: Math.round(run.load.requestsPerSecond),
        unit: 'orders/s',
        ...(run !== one && one ? { baseline: { name: '1 core instance', value: Math.round(one.load.requestsPerSecond) } } : { isBaseline: true }),
        note: `busiest: ${top.name} at ${Math.round(top.percentOfOneCore)} % of a core; machine ${Math.round(run.machineBusy * 100)} % busy`,
      },
      { key: `instances.core-${run.cores}.p50`, label: `POST /api/v1/orders, ${who}: p50`, value: round(run.load.latency.p50Ms, 1), unit: 'ms' },
      { key: `instances.core-${run.cores}.p99`, label: `POST /api/v1/orders, ${who}: p99`, value: round(run.load.latency.p99Ms, 1), unit: 'ms' },
    ];
  });
}

/** Order throughput with one and with two core instances behind the gateway, and where the CPU goes. */
export const instances: Scenario = {
  name: 'instances',
  title: 'Order throughput with one and two core instances behind the gateway',
  built: true,
  timeLimitS: { quick: 240, full: 420 },
  async run(context) {
    const dir = await makeDataDir('instances');
    try {
      // One data directory: the second system starts warm on the first one's databases.
      const runs = [await measure(1, dir.path, context), await measure(2, dir.path, context)];
      return {
        figures: figures(runs),
        details: { connections: CONNECTIONS, runs: runs.map(({ load: { series: _series, ...load }, ...run }) => ({ ...run, load })) },
        notes: [
          `Instances: POST /api/v1/orders (one order per request, no Idempotency-Key) through the gateway on ${CONNECTIONS} autocannon connections for 15 s (quick: 5 s) after a 3 s warm-up, on a system started with ARCHIPELAGO_INSTANCES=core=1 and then core=2 (the gateway balances across the instances; same data directory, the second start warm). CPU per process from /proc/<pid>/stat over the load: each service, PostgreSQL (postmaster and every backend) and the bench itself. On 2 cores a second core instance adds no CPU: the figure says which process is busiest and how busy the machine was, not how far core scales.`,
        ],
      };
    } finally {
      await dir.remove();
    }
  },
};
