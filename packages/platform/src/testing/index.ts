import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { createDatabase } from '../db.ts';
import type { ServiceDatabase } from '../databases.ts';
import { serviceRoles } from '../provision.ts';
import type { TestCluster } from './cluster.ts';

export type { TestCluster } from './cluster.ts';
export { freePort } from '../net.ts';
export { asPrincipal, OPERATOR, testCredentials, testCredentialsEnv, testOperatorKey, testServiceToken } from './credentials.ts';
export { capturedLogger } from './logs.ts';

/** The run's cluster, as provided by the global setup. */
export function testCluster(): TestCluster {
  return inject('archipelagoCluster');
}

/** A superuser client on the test cluster (for test setup only; services never get one). */
export async function superuserClient(database = 'postgres'): Promise<pg.Client> {
  const cluster = testCluster();
  const client = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: cluster.superuserPassword, database });
  await client.connect();
  return client;
}

export interface TestDatabase extends ServiceDatabase {
  /** Name of this copy, e.g. `core_t3f9a1c`. */
  readonly name: string;
  /** Connected as the service's app role, like the running service. */
  readonly db: Kysely<unknown>;
}

/**
 * A fresh, migrated copy of a service's database for one test file, dropped after it.
 *
 * @example
 * const database = await useTestDatabase('core');
 * await sql`select 1`.execute(database.db);
 */
export async function useTestDatabase(serviceKey: string): Promise<TestDatabase> {
  const service = loadRegistry(undefined, {}).service(serviceKey);
  const template = testCluster().databases[serviceKey];
  if (!template) throw new Error(`${serviceKey} has no database`);
  const name = `${service.database}_t${randomBytes(4).toString('hex')}`;
  const roles = serviceRoles(service);
  const admin = await superuserClient();
  try {
    await createFromTemplate(admin, name, service.database, roles.owner);
    await admin.query(`REVOKE ALL ON DATABASE ${pg.escapeIdentifier(name)} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${pg.escapeIdentifier(name)} TO ${pg.escapeIdentifier(roles.owner)}, ${pg.escapeIdentifier(roles.app)}`);
  } finally {
    await admin.end();
  }
  const rename = (url: string) => {
    const parsed = new URL(url);
    parsed.pathname = `/${name}`;
    return parsed.toString();
  };
  const appUrl = rename(template.appUrl);
  const db = createDatabase<unknown>(appUrl, { max: 4, applicationName: `test-${serviceKey}` });
  afterAll(async () => {
    await db.destroy();
    const client = await superuserClient();
    try {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    } finally {
      await client.end();
    }
  });
  return { service, name, appUrl, ownerUrl: rename(template.ownerUrl), source: 'embedded', db };
}

// Two workers copying one template at once can collide ("being accessed by other users"); retry.
async function createFromTemplate(admin: pg.Client, name: string, template: string, owner: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)} OWNER ${pg.escapeIdentifier(owner)}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}
