import pg from 'pg';
import { afterAll } from 'vitest';
import { serviceRoles } from '../provision.ts';
import { READER_ROLE, REPLICATOR_ROLE, syncReporting, type ReportingSource, type SourceSyncResult } from '../replication.ts';
import { superuserClient, testCluster, type TestDatabase } from './index.ts';

const PASSWORD = 'replicator-test-password';
const READER_PASSWORD = 'reader-test-password';
/** The vitest project (vitest.config.ts) whose files replicate, on a cluster of their own. */
const REPLICATING_PROJECT = 'reporting';

/**
 * Replicates test databases into a test reporting database, as the CLI does on start; the
 * subscriptions and their slots (cluster-wide) are dropped after the file, before the databases.
 * Call it after the `useTestDatabase` calls it uses; only files of the `reporting` vitest project,
 * which has a cluster of its own, may.
 *
 * @example
 * const reporting = await useTestReporting(await useTestDatabase('reporting'), [core, iam]);
 * await reporting.sync();
 */
export async function useTestReporting(reporting: TestDatabase, sourceDatabases: readonly TestDatabase[]) {
  const cluster = testCluster();
  if (cluster.project !== REPLICATING_PROJECT) {
    throw new Error(`useTestReporting creates subscriptions, whose initial copies hold back every event feed of their cluster: list this file in the '${REPLICATING_PROJECT}' project of vitest.config.ts`);
  }
  const superuser = (database: string): pg.ClientConfig => ({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: cluster.superuserPassword, database });
  const conninfo = (database: string) => `host=127.0.0.1 port=${cluster.port} dbname=${database} user=${REPLICATOR_ROLE} password=${PASSWORD}`;
  let sources: ReportingSource[] = sourceDatabases.map((d) => ({ service: d.service, admin: superuser(d.name), conninfo: conninfo(d.name) }));
  afterAll(() => dropSubscriptions(reporting.name, sourceDatabases.map((d) => d.name)));
  return {
    superuser,
    password: PASSWORD,
    get sources(): ReportingSource[] {
      return sources;
    },
    /** Sources with a changed declaration (e.g. a service publishing one more table). */
    setSources(next: ReportingSource[]) {
      sources = next;
    },
    /** reporting_reader's login to the reporting database (tools' connection). */
    reader: (): pg.ClientConfig => ({ host: '127.0.0.1', port: cluster.port, user: READER_ROLE, password: READER_PASSWORD, database: reporting.name }),
    sync: (options: { queryTimeoutMs?: number } = {}): Promise<SourceSyncResult[]> =>
      syncReporting({ sources, reporting: superuser(reporting.name), replicatorPassword: PASSWORD, readers: [serviceRoles(reporting.service).app], readerPassword: READER_PASSWORD, ...options }),
  };
}

async function dropSubscriptions(database: string, sourceNames: readonly string[]): Promise<void> {
  const target = await superuserClient(database);
  const admin = await superuserClient();
  try {
    const { rows } = await target.query<{ subname: string; slot: string | null }>('SELECT subname, subslotname AS slot FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())');
    for (const { subname } of rows) {
      await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subname)} DISABLE`);
      await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subname)} SET (slot_name = NONE)`);
      await target.query(`DROP SUBSCRIPTION ${pg.escapeIdentifier(subname)}`);
    }
    const slots = rows.map((r) => r.slot).filter((s): s is string => s !== null);
    for (let attempt = 0; attempt < 200; attempt++) {
      const active = await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = ANY ($1) AND active', [slots]);
      if (active.rowCount === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Table-sync slots of a copy cut short belong to the subscription too.
    await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND (slot_name = ANY ($1) OR (database = ANY ($2) AND slot_name LIKE $3))', [slots, sourceNames, 'pg\\_%\\_sync\\_%']);
  } finally {
    await target.end();
    await admin.end();
  }
}
