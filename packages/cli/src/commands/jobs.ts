import type { Registry, Service } from '@archipelago/registry';
import { StartupError } from '@archipelago/platform/startup';
import type { JobStatus } from '@archipelago/platform/jobs';
import { callService } from '../internal-api.ts';

const withJobs = (registry: Registry) => registry.services.filter((service) => (service.jobs?.length ?? 0) > 0);

/** `archipelago jobs list [service]` and `jobs run <service> <job>`: the scheduled jobs of the running services. */
export async function jobs(
  registry: Registry,
  action: 'list' | 'run',
  args: { service?: string; job?: string },
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<number> {
  const known = withJobs(registry).map((service) => service.key).join(', ');
  const pick = (key: string): Service | undefined => {
    const service = registry.service(key);
    if ((service.jobs?.length ?? 0) > 0) return service;
    say(`${key} runs no jobs (services with jobs: ${known}).`);
    return undefined;
  };
  if (action === 'run') {
    if (!args.service || !args.job) {
      say(`jobs run needs a service and a job, e.g. \`jobs run core lookups.reconcile\` (see \`jobs list\`).`);
      return 2;
    }
    const service = pick(args.service);
    if (!service) return 2;
    if (!service.jobs!.some((job) => job.name === args.job)) {
      say(`${service.key} has no job ${args.job} (it has ${service.jobs!.map((job) => job.name).join(', ')}).`);
      return 2;
    }
    const { job } = (await callService<{ job: JobStatus }>(service, env, { method: 'POST', path: `/internal/v1/jobs/${encodeURIComponent(args.job)}/run` }))!;
    describe(service.key, job, say);
    return job.lastRun?.outcome === 'succeeded' ? 0 : 1;
  }
  const services = args.service ? [pick(args.service)] : withJobs(registry);
  if (services.includes(undefined)) return 2;
  let unreachable = 0;
  for (const service of services as Service[]) {
    let listed: JobStatus[];
    try {
      ({ jobs: listed } = (await callService<{ jobs: JobStatus[] }>(service, env, { path: '/internal/v1/jobs' }))!);
    } catch (error) {
      if (!(error instanceof StartupError)) throw error;
      say(error.message); // one service down does not hide the others' jobs
      unreachable++;
      continue;
    }
    for (const job of listed) describe(service.key, job, say);
  }
  return unreachable > 0 ? 1 : 0;
}

function describe(service: string, job: JobStatus, say: (line: string) => void): void {
  const schedule = job.schedule === null ? 'off' : `${job.schedule} (UTC), next ${job.nextRunAt ?? '—'}`;
  const last = job.lastRun
    ? `last ${job.lastRun.outcome} ${job.lastRun.finishedAt} (${job.lastRun.trigger}, ${job.lastRun.durationMs} ms, on ${job.lastRun.instance})`
    : 'never run';
  const running = job.running ? `; running since ${job.running.since ?? '?'} on ${job.running.instance ?? '?'}` : '';
  say(`${service}  ${job.name}  ${schedule}; ${last}${running}`);
  say(`    ${job.description}`);
  if (job.lastRun?.outcome === 'failed') say(`    error: ${job.lastRun.error}`);
  else if (job.lastRun?.result !== null && job.lastRun?.result !== undefined) say(`    result: ${JSON.stringify(job.lastRun.result)}`);
}
