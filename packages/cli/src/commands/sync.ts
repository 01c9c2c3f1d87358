import { envPrefix, type Registry, type Service } from '@archipelago/registry';
import type { DriftReport } from '@archipelago/platform/lookups';
import { callService } from '../internal-api.ts';

/** `archipelago sync drift|reconcile [lookup]`: asks each service that keeps lookups. */
export async function sync(
  registry: Registry,
  action: 'drift' | 'reconcile',
  lookup: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
  /** Only these services' lookups (`--service`); every keeper when empty. */
  only: readonly string[] = [],
): Promise<number> {
  const keepers = registry.services
    .filter((service) => only.length === 0 || only.includes(service.key))
    .filter((service) => (service.lookups ?? []).some((l) => lookup === undefined || l.table === lookup));
  if (keepers.length === 0) {
    say(`No service keeps a lookup${lookup ? ` named ${lookup}` : ''}.`);
    return 2;
  }
  let drifting = 0;
  for (const service of keepers) {
    const query = lookup ? `?lookup=${encodeURIComponent(lookup)}` : '';
    const path = action === 'drift' ? `/internal/v1/lookups/drift${query}` : `/internal/v1/lookups/reconcile${query}`;
    const { reports } = (await callService<{ reports: DriftReport[] }>(service, env, { method: action === 'drift' ? 'GET' : 'POST', path }))!;
    for (const report of reports) {
      const found = report.missing.length + report.stale.length + report.extra.length;
      if (found > 0) drifting++;
      const verdict = found === 0 ? 'in sync' : report.repaired ? 'repaired' : 'DRIFT';
      say(`${service.key}.${report.lookup}: ${report.masterRows} master rows; missing ${describe(report.missing)}, stale ${describe(report.stale)}, extra ${describe(report.extra)} — ${verdict}`);
    }
  }
  // `drift` exits 1 when something differs, so a scheduler or a check can act on it.
  return action === 'drift' && drifting > 0 ? 1 : 0;
}

/**
 * Waits until every lookup of the given running instances equals its master, so that `start`
 * says "ready" only once a seeded department or label is accepted everywhere (at a first start the
 * tables fill from the producers' feeds just after the services come up). Gives up after
 * `timeoutMs` and returns the lookups still behind.
 */
export async function awaitLookups(
  keepers: readonly { service: Service; url: string }[],
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind: string[] = [];
    for (const { service, url } of keepers) {
      try {
        const { reports } = (await callService<{ reports: DriftReport[] }>(service, { ...env, [`${envPrefix(service.key)}_URL`]: url }, { path: '/internal/v1/lookups/drift' }))!;
        for (const report of reports) if (report.missing.length + report.stale.length + report.extra.length > 0) behind.push(`${service.key}.${report.lookup}`);
      } catch {
        behind.push(`${service.key} (drift check not answered)`);
      }
    }
    if (behind.length === 0 || Date.now() > deadline || signal?.aborted) return behind;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const describe = (keys: readonly string[]) => (keys.length === 0 ? '0' : `${keys.length} (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''})`);
