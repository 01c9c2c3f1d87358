import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { createDatabase } from '@archipelago/platform';
import { serviceRoles } from '@archipelago/platform/provision';
import { loadRegistry } from '@archipelago/registry';
import type { RunningSystem } from './system.ts';

/** A pool on a service's database as that service's own app role, as the service itself connects. */
export async function serviceDatabase<DB = unknown>(system: RunningSystem, key: string, options: { applicationName: string; max: number }): Promise<Kysely<DB>> {
  const service = loadRegistry(undefined, {}).service(key);
  const roles = serviceRoles(service);
  const credentials = JSON.parse(await readFile(path.join(system.dataDir, 'postgres/credentials.json'), 'utf8')) as Record<string, string>;
  const url = `postgres://${roles.app}:${encodeURIComponent(credentials[roles.appPasswordVariable]!)}@127.0.0.1:${system.ports.postgres}/${service.database}`;
  return createDatabase<DB>(url, options);
}
