import { serviceDefinitions, type Registry } from '@archipelago/registry';
import { loadConfig } from '@archipelago/platform/config';
import { StartupError } from '@archipelago/platform/startup';
import type { OpenedDatabases } from '@archipelago/platform/databases';
import { emitHeartbeats, reportingStatus, reportingTopology, resyncReporting, syncReporting, type ReportingSource, type SourceSyncResult } from '@archipelago/platform/replication';
import { localSettings, openLocalDatabases } from '../stack.ts';

// The retained-WAL size above which `reporting status` warns: the reporting service's own setting.
const maxRetainedBytes = (env: Readonly<Record<string, string | undefined>>) => loadConfig(serviceDefinitions.reporting.config, env).REPORTING_MAX_RETAINED_WAL_MB * 1024 * 1024;

/**
 * After the migrations: publications, slots, copies and subscriptions brought in line. A failure is
 * reported and start-up goes on (reporting never holds a service back); so does a missing reporting.
 */
export async function provisionReporting(databases: OpenedDatabases, env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): Promise<SourceSyncResult[]> {
  if (!databases.replicatorPassword) {
    say('  reporting: not replicated (set REPORTING_REPLICATOR_PASSWORD when every database is external)');
    return [];
  }
  const topology = reportingTopology(databases.byService.values(), databases.replicatorPassword);
  if (!topology.reporting) return [];
  for (const key of topology.skipped) say(`  reporting: ${key} not replicated (no ${key.toUpperCase()}_ADMIN_DATABASE_URL)`);
  try {
    const results = await syncReporting({
      sources: topology.sources, reporting: topology.reporting, replicatorPassword: databases.replicatorPassword, readers: topology.readers, readerPassword: databases.readerPassword,
      queryTimeoutMs: localSettings(env).reporting.queryTimeoutMs,
    });
    for (const r of results) {
      const changes = [r.created ? 'subscribed' : '', r.copied.length ? `copying ${r.copied.join(', ')}` : '', ...r.altered].filter(Boolean);
      say(`  reporting ← ${r.service}: ${changes.length ? changes.join('; ') : 'in line'}`);
    }
    return results;
  } catch (error) {
    say(`  reporting: not brought in line (${(error as Error).message}); the services start anyway`);
    return [];
  }
}

/** Heartbeats every `REPORTING_HEARTBEAT_SECONDS` while `start` runs; returns the stop. */
export function startHeartbeats(databases: OpenedDatabases, env: Readonly<Record<string, string | undefined>>, say: (line: string) => void): () => void {
  const seconds = localSettings(env).reporting.heartbeatSeconds;
  if (!databases.replicatorPassword || seconds === 0) return () => undefined;
  const { sources, reporting } = reportingTopology(databases.byService.values(), databases.replicatorPassword);
  if (!reporting || sources.length === 0) return () => undefined;
  const beat = (list: readonly ReportingSource[]) => emitHeartbeats(list, (service, error) => say(`  reporting: heartbeat to ${service} failed (${(error as Error).message})`));
  const timer = setInterval(() => void beat(sources), seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** `archipelago reporting status` and `reporting resync <service>`. */
export async function reporting(
  registry: Registry,
  action: 'status' | 'resync',
  service: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<number> {
  if (action === 'resync' && !service) {
    say('reporting resync needs a service, e.g. `reporting resync core`.');
    return 2;
  }
  const databases = await openLocalDatabases(registry, registry.services.filter((s) => s.stateful), env, say);
  try {
    if (!databases.replicatorPassword) throw new StartupError('REPORTING_REPLICATOR_PASSWORD is not set and no database is embedded.');
    const topology = reportingTopology(databases.byService.values(), databases.replicatorPassword);
    if (!topology.reporting) throw new StartupError('The reporting database has no superuser connection (REPORTING_ADMIN_DATABASE_URL).');
    if (action === 'resync') {
      const source = topology.sources.find((s) => s.service.key === service);
      if (!source) {
        say(`${service} publishes nothing to reporting (sources: ${topology.sources.map((s) => s.service.key).join(', ')}).`);
        return 2;
      }
      const result = await resyncReporting(source, topology.reporting, databases.replicatorPassword);
      say(`reporting ← ${result.service}: rebuilt; copying every table again`);
      return 0;
    }
    const statuses = await reportingStatus(topology.sources, topology.reporting, maxRetainedBytes(env));
    for (const s of statuses) {
      say(
        `${s.service.padEnd(12)} ${s.enabled ? (s.streaming ? 'streaming' : 'enabled, not streaming') : 'disabled'}  lag ${s.lagBytes ?? '?'} B / ${s.lagSeconds ?? '?'} s  ` +
          `retained ${s.retainedBytes ?? '?'} B (${s.walStatus ?? 'no slot'})  apply errors ${s.applyErrors}  sync errors ${s.syncErrors}  conflicts ${s.conflicts}`,
      );
      for (const warning of s.warnings) say(`  warning: ${warning}`);
    }
    return statuses.some((s) => s.warnings.length > 0) ? 1 : 0;
  } finally {
    await databases.close();
  }
}
