import pg from 'pg';
import type { Service } from '@archipelago/registry';
import { serviceRoles } from './provision.ts';

/** The login role reporting's subscriptions connect as: REPLICATION and SELECT on published columns only. */
export const REPLICATOR_ROLE = 'reporting_replicator';
/** The read-only role for reporting tools (Metabase, psql): SELECT on the copies, nothing else. */
export const READER_ROLE = 'reporting_reader';

/** One service database that publishes tables to reporting. */
export interface ReportingSource {
  readonly service: Service;
  /** A superuser connection to the service's database (its own cluster or the shared one). */
  readonly admin: pg.ClientConfig;
  /** How reporting's PostgreSQL reaches that database as the replicator (libpq keyword/value string). */
  readonly conninfo: string;
}

/** The names one source uses; slots are cluster-wide, so they carry the source database's name. */
export interface ReportingNames {
  readonly publication: string;
  readonly slot: string;
  readonly subscription: string;
  /** The schema holding the copies in the reporting database (the service's key). */
  readonly schema: string;
}

const ident = (name: string) => pg.escapeIdentifier(name);
const lit = (value: string) => pg.escapeLiteral(value);

/** The publication, slot and subscription names of a source whose database is called `database`. */
export function reportingNames(service: Service, database: string): ReportingNames {
  const slot = `reporting_${database}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  return { publication: 'reporting', slot, subscription: slot, schema: service.key };
}

/** The declared tables of a service with their excluded (never published) columns. */
export function publishedTables(service: Service): { table: string; exclude: readonly string[] }[] {
  return (service.reporting?.publishes ?? []).map((t) => (typeof t === 'string' ? { table: t, exclude: [] } : t));
}

interface SourceColumn {
  readonly table: string;
  readonly column: string;
  readonly attnum: number;
  readonly type: string;
  readonly key: boolean;
}

/** What `syncReporting` did for one source, for the CLI to say. */
export interface SourceSyncResult {
  readonly service: string;
  readonly created: boolean;
  /** Tables (re)copied from scratch because they were new or gained columns. */
  readonly copied: readonly string[];
  /** Column changes applied to the copies, e.g. `core.orders: added note`. */
  readonly altered: readonly string[];
}

/**
 * Brings reporting in line with every source, as a superuser, on every start: the replicator role,
 * one publication per source database (column lists where columns are excluded), a slot created
 * apart (a CREATE SUBSCRIPTION that creates its slot on its own cluster hangs), the copies in a
 * schema per service following the source's columns (added, renamed by attribute number, dropped),
 * and one subscription per source. A table that is new or gained columns is copied afresh, so the
 * values written before the copy had the column are not lost.
 */
export async function syncReporting(options: {
  readonly sources: readonly ReportingSource[];
  readonly reporting: pg.ClientConfig;
  readonly replicatorPassword: string;
  /** Roles given reporting_reader's rights in the reporting database (the reporting service's app role). */
  readonly readers?: readonly string[];
  /** Gives reporting_reader a login (for reporting tools) with this password. */
  readonly readerPassword?: string;
  /** Longest statement and idle spell in a transaction of every reader (default 30 s); a transaction gets twice it. */
  readonly queryTimeoutMs?: number;
}): Promise<SourceSyncResult[]> {
  const target = new pg.Client(options.reporting);
  await target.connect();
  try {
    await ensureRoles(target, options.replicatorPassword);
    const db = (await target.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
    if (options.readerPassword) {
      await target.query(`ALTER ROLE ${ident(READER_ROLE)} WITH LOGIN PASSWORD ${lit(options.readerPassword)}`);
      await target.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO ${ident(READER_ROLE)}`);
    }
    for (const reader of options.readers ?? []) await target.query(`GRANT ${ident(READER_ROLE)} TO ${ident(reader)}`);
    await boundReaders(target, db, [READER_ROLE, ...(options.readers ?? [])], options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
    const results: SourceSyncResult[] = [];
    for (const source of options.sources) {
      if (publishedTables(source.service).length === 0) continue;
      results.push(await syncSource(source, target, options.replicatorPassword));
    }
    return results;
  } finally {
    await target.end();
  }
}

/** Default of syncReporting's `queryTimeoutMs` (`REPORTING_QUERY_TIMEOUT_MS` under the CLI). */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

// Readers share the services' cluster in the embedded default (docs/architecture.md#reporting):
// they never get a transaction id (no write or TEMP rights, and the functions that assign one
// revoked), so the event feeds, which wait only for transactions holding one, never wait for a
// report; and each statement, transaction and idle spell in a transaction is bounded, since the
// snapshot a reader holds keeps vacuum's horizon back in every database of the cluster. Role
// settings are defaults a session may change: a bound for tools, not a wall against a hostile reader.
async function boundReaders(client: pg.Client, database: string, readers: readonly string[], timeoutMs: number): Promise<void> {
  const { owner } = (await client.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [database])).rows[0]!;
  for (const fn of ['pg_current_xact_id()', 'txid_current()']) {
    await client.query(`REVOKE EXECUTE ON FUNCTION ${fn} FROM PUBLIC`);
    await client.query(`GRANT EXECUTE ON FUNCTION ${fn} TO ${ident(owner)}`);
  }
  // A statement is cancelled at the bound; a transaction (several statements) is ended at twice it.
  const bounds = { statement_timeout: timeoutMs, idle_in_transaction_session_timeout: timeoutMs, transaction_timeout: 2 * timeoutMs };
  for (const reader of readers) {
    for (const [setting, ms] of Object.entries(bounds)) {
      await client.query(`ALTER ROLE ${ident(reader)} IN DATABASE ${ident(database)} SET ${setting} = ${Math.round(ms)}`);
    }
  }
}

async function ensureRoles(client: pg.Client, replicatorPassword: string): Promise<void> {
  for (const role of [REPLICATOR_ROLE, READER_ROLE]) {
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    if (exists.rowCount === 0) await client.query(`CREATE ROLE ${ident(role)} NOLOGIN`);
  }
  await client.query(`ALTER ROLE ${ident(REPLICATOR_ROLE)} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${lit(replicatorPassword)}`);
  await client.query(`ALTER ROLE ${ident(READER_ROLE)} SET default_transaction_read_only = on`);
}

async function syncSource(source: ReportingSource, target: pg.Client, replicatorPassword: string): Promise<SourceSyncResult> {
  const client = new pg.Client(source.admin);
  await client.connect();
  try {
    // One PostgreSQL per service: the replicator must exist on the source's cluster too.
    await ensureRoles(client, replicatorPassword);
    const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
    const names = reportingNames(source.service, database);
    const schema = source.service.database;
    const declared = publishedTables(source.service);
    const columns = await sourceColumns(client, schema, declared);
    const tables = declared.filter((t) => columns.some((c) => c.table === t.table));

    await grantReplicator(client, database, schema, tables, columns);
    const { altered, grown, stale } = await alignCopies(target, names.schema, tables, columns);

    const subscription = await target.query<{ enabled: boolean }>('SELECT subenabled AS enabled FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())', [names.subscription]);
    const exists = subscription.rowCount !== 0;
    const enabled = subscription.rows[0]?.enabled ?? false;
    // A table a migration run detached (detachColumnLists) missed changes: it is copied afresh.
    const published = new Set(
      (await client.query<{ table: string }>('SELECT tablename AS table FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2', [names.publication, schema])).rows.map((r) => r.table),
    );
    const recopy = exists ? [...new Set([...grown, ...tables.map((t) => t.table).filter((t) => !published.has(t))])] : [];
    // A table that gained columns, or was detached, leaves the subscription for a moment and is copied afresh.
    if (exists && enabled && recopy.length > 0) {
      await setPublication(client, names.publication, schema, tables.filter((t) => !recopy.includes(t.table)), columns);
      await target.query(`ALTER SUBSCRIPTION ${ident(names.subscription)} REFRESH PUBLICATION WITH (copy_data = false)`);
    }
    await setPublication(client, names.publication, schema, tables, columns);
    // Owned by the service's owner role, so its migration run can detach column lists (below).
    await client.query(`ALTER PUBLICATION ${ident(names.publication)} OWNER TO ${ident(serviceRoles(source.service).owner)}`);
    const slot = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
    if (slot.rowCount === 0) await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot]);

    const subscribed = new Set(
      exists
        ? (await target.query<{ table: string }>(
            `SELECT c.relname AS table FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid JOIN pg_class c ON c.oid = r.srrelid
             WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            [names.subscription],
          )).rows.map((r) => r.table)
        : [],
    );
    const copied = tables.map((t) => t.table).filter((t) => !subscribed.has(t));
    // Whatever the subscription is about to copy starts empty (a copy is COPY into the table).
    for (const table of copied) await target.query(`TRUNCATE ${ident(names.schema)}.${ident(table)}`);
    if (!exists) {
      await target.query(
        `CREATE SUBSCRIPTION ${ident(names.subscription)} CONNECTION ${lit(source.conninfo)} PUBLICATION ${ident(names.publication)}
         WITH (create_slot = false, slot_name = ${lit(names.slot)}, copy_data = true)`,
      );
    } else if (enabled && copied.length > 0) {
      await target.query(`ALTER SUBSCRIPTION ${ident(names.subscription)} REFRESH PUBLICATION WITH (copy_data = true)`);
    }
    if (stale.length > 0) {
      if (enabled && (await replicatedPast(client, names.slot, 10_000))) {
        for (const { table, column } of stale) {
          await target.query(`ALTER TABLE ${ident(names.schema)}.${ident(table)} DROP COLUMN ${ident(column)}`);
          if (!altered.some((a) => a.startsWith(`${names.schema}.${table}: renamed ${column} to`))) altered.push(`${names.schema}.${table}: dropped ${column}`);
        }
      } else {
        altered.push(...stale.map(({ table, column }) => `${names.schema}.${table}: ${column} kept until replication passes its removal`));
      }
    }
    return { service: source.service.key, created: !exists, copied: exists ? copied : [], altered };
  } finally {
    await client.end();
  }
}

async function sourceColumns(client: pg.Client, schema: string, declared: readonly { table: string; exclude: readonly string[] }[]): Promise<SourceColumn[]> {
  const { rows } = await client.query<SourceColumn>(
    `SELECT c.relname AS table, a.attname AS column, a.attnum, format_type(a.atttypid, a.atttypmod) AS type,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey)) AS key
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
     WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname = ANY ($2) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     ORDER BY c.relname, a.attnum`,
    [schema, declared.map((t) => t.table)],
  );
  return rows.filter((c) => !declared.find((t) => t.table === c.table)!.exclude.includes(c.column));
}

// SELECT on the published columns only: even the replicator cannot read a secret column.
async function grantReplicator(client: pg.Client, database: string, schema: string, tables: readonly { table: string }[], columns: readonly SourceColumn[]): Promise<void> {
  const role = ident(REPLICATOR_ROLE);
  await client.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${role}`);
  await client.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${role}`);
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${ident(schema)} FROM ${role}`);
  for (const { table } of tables) {
    const list = columns.filter((c) => c.table === table).map((c) => ident(c.column)).join(', ');
    await client.query(`GRANT SELECT (${list}) ON ${ident(schema)}.${ident(table)} TO ${role}`);
  }
}

// Tables without exclusions are published whole (no column list: a migration dropping a column
// is never blocked by the publication's dependency on it); the others with their column list.
async function setPublication(client: pg.Client, publication: string, schema: string, tables: readonly { table: string; exclude: readonly string[] }[], columns: readonly SourceColumn[]): Promise<void> {
  const items = tables.map(({ table, exclude }) => {
    const name = `${ident(schema)}.${ident(table)}`;
    if (exclude.length === 0) return name;
    return `${name} (${columns.filter((c) => c.table === table).map((c) => ident(c.column)).join(', ')})`;
  });
  const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (exists.rowCount === 0) {
    await client.query(items.length > 0 ? `CREATE PUBLICATION ${ident(publication)} FOR TABLE ${items.join(', ')}` : `CREATE PUBLICATION ${ident(publication)}`);
  } else if (items.length > 0) {
    await client.query(`ALTER PUBLICATION ${ident(publication)} SET TABLE ${items.join(', ')}`);
  } else {
    const current = await client.query<{ t: string }>('SELECT format($$%I.%I$$, schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1', [publication]);
    if (current.rowCount) await client.query(`ALTER PUBLICATION ${ident(publication)} DROP TABLE ${current.rows.map((r) => r.t).join(', ')}`);
  }
}

// The copies follow the source, only ever gaining columns at once: a new or renamed column (the
// source's attribute number is kept in each copy column's comment) is added and its table copied
// afresh; a column the source dropped or renamed away is returned as stale, to be dropped once
// replication has passed the change (changes still queued carry it). Owned by the superuser who
// runs the subscription; everyone else may only read them.
async function alignCopies(target: pg.Client, schema: string, tables: readonly { table: string }[], columns: readonly SourceColumn[]): Promise<{ altered: string[]; grown: string[]; stale: { table: string; column: string }[] }> {
  const altered: string[] = [];
  const grown: string[] = [];
  const stale: { table: string; column: string }[] = [];
  await target.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
  await target.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(READER_ROLE)}`);
  const { rows: existing } = await target.query<{ table: string; column: string; attnum: string | null; type: string }>(
    `SELECT c.relname AS table, a.attname AS column, col_description(c.oid, a.attnum) AS attnum, format_type(a.atttypid, a.atttypmod) AS type
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
     WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
    [schema],
  );
  for (const { table } of tables) {
    const name = `${ident(schema)}.${ident(table)}`;
    const wanted = columns.filter((c) => c.table === table);
    const have = existing.filter((c) => c.table === table);
    if (have.length === 0) {
      const keys = wanted.filter((c) => c.key).map((c) => ident(c.column));
      const defs = wanted.map((c) => `${ident(c.column)} ${c.type}`);
      if (keys.length > 0) defs.push(`PRIMARY KEY (${keys.join(', ')})`);
      await target.query(`CREATE TABLE ${name} (${defs.join(', ')})`);
      for (const c of wanted) await target.query(`COMMENT ON COLUMN ${name}.${ident(c.column)} IS ${lit(String(c.attnum))}`);
      continue;
    }
    for (const copy of have) {
      const now = wanted.find((c) => c.column === copy.column && String(c.attnum) === copy.attnum);
      if (!now) {
        stale.push({ table, column: copy.column });
        continue;
      }
      if (now.type !== copy.type) {
        await target.query(`ALTER TABLE ${name} ALTER COLUMN ${ident(now.column)} TYPE ${now.type} USING ${ident(now.column)}::${now.type}`);
        altered.push(`${schema}.${table}: ${now.column} is now ${now.type}`);
      }
    }
    for (const c of wanted.filter((w) => !have.some((h) => h.column === w.column && h.attnum === String(w.attnum)))) {
      const renamed = have.find((h) => h.attnum === String(c.attnum));
      if (have.some((h) => h.column === c.column)) {
        // The name is back with another attribute number (dropped and re-added): a fresh column.
        await target.query(`ALTER TABLE ${name} DROP COLUMN ${ident(c.column)}`);
        stale.splice(stale.findIndex((s) => s.table === table && s.column === c.column), 1);
      }
      await target.query(`ALTER TABLE ${name} ADD COLUMN ${ident(c.column)} ${c.type}`);
      await target.query(`COMMENT ON COLUMN ${name}.${ident(c.column)} IS ${lit(String(c.attnum))}`);
      altered.push(renamed ? `${schema}.${table}: renamed ${renamed.column} to ${c.column}` : `${schema}.${table}: added ${c.column}`);
      if (!grown.includes(table)) grown.push(table);
    }
  }
  await target.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${ident(schema)} FROM PUBLIC`);
  await target.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${ident(schema)} TO ${ident(READER_ROLE)}`);
  return { altered, grown, stale };
}

// True once the slot has confirmed everything written before `lsn`; a transactional logical
// message gives an idle database something to confirm (it is also the heartbeat).
async function replicatedPast(client: pg.Client, slot: string, waitMs: number): Promise<boolean> {
  const lsn = (await client.query<{ lsn: string }>(`SELECT pg_logical_emit_message(true, 'archipelago.reporting', 'heartbeat')::text AS lsn`)).rows[0]!.lsn;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query<{ done: boolean }>('SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1', [slot, lsn]);
    if (rows[0]?.done) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Called before a service's pending migrations: tables published with a column list leave the
 * publication (the list depends on its columns, so it would make a DROP COLUMN fail); the next
 * `syncReporting` puts them back and copies them afresh. Never fails and never waits: a missing
 * publication or a lock held elsewhere just skips it.
 */
export async function detachColumnLists(ownerUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: ownerUrl, application_name: 'reporting-detach' });
  try {
    await client.connect();
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = '2s'`);
    const { rows } = await client.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = 'reporting'
         AND cardinality(attnames) < (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = format('%I.%I', schemaname, tablename)::regclass AND a.attnum > 0 AND NOT a.attisdropped)`,
    );
    if (rows.length > 0) await client.query(`ALTER PUBLICATION reporting DROP TABLE ${rows.map((r) => r.t).join(', ')}`);
    await client.query('COMMIT');
  } catch {
    await client.query('ROLLBACK').catch(() => undefined);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The sources and target of a set of opened databases (the CLI's), skipping those without a superuser connection. */
export function reportingTopology(
  databases: Iterable<{ service: Service; admin?: pg.ClientConfig }>,
  replicatorPassword: string,
): { sources: ReportingSource[]; reporting: pg.ClientConfig | undefined; readers: string[]; skipped: string[] } {
  const all = [...databases];
  const reportingService = all.find((d) => d.service.key === 'reporting');
  const reporting = reportingService?.admin;
  const readers = reportingService ? [serviceRoles(reportingService.service).app] : [];
  const sources: ReportingSource[] = [];
  const skipped: string[] = [];
  for (const { service, admin } of all) {
    if (publishedTables(service).length === 0) continue;
    if (!admin) {
      skipped.push(service.key);
      continue;
    }
    sources.push({ service, admin, conninfo: replicatorConninfo(admin, service.database, replicatorPassword) });
  }
  return { sources, reporting, readers, skipped };
}

// The subscription's libpq line: where the superuser connection points, as the replicator.
function replicatorConninfo(admin: pg.ClientConfig, database: string, password: string): string {
  const url = admin.connectionString ? new URL(admin.connectionString) : undefined;
  const host = url?.hostname || admin.host || '127.0.0.1';
  const port = url?.port || admin.port || 5432;
  const dbname = url ? decodeURIComponent(url.pathname.slice(1)) || database : admin.database || database;
  const quote = (value: string | number) => `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `host=${quote(host)} port=${quote(port)} dbname=${quote(dbname)} user=${quote(REPLICATOR_ROLE)} password=${quote(password)}`;
}

/** One subscription's health, as `reporting status` and `GET /api/v1/reporting/status` show it. */
export interface SubscriptionStatus {
  readonly service: string;
  readonly subscription: string;
  readonly enabled: boolean;
  /** An apply worker is running. */
  readonly streaming: boolean;
  /** WAL written in the source and not yet confirmed by reporting. */
  readonly lagBytes: number | null;
  readonly lagSeconds: number | null;
  /** WAL the slot keeps in the source's pg_wal. */
  readonly retainedBytes: number | null;
  /** The slot's wal_status (`reserved`, `extended`, `unreserved`, `lost`). */
  readonly walStatus: string | null;
  readonly applyErrors: number;
  readonly syncErrors: number;
  readonly conflicts: number;
  readonly warnings: readonly string[];
}

/**
 * Every subscription's state, lag, retained WAL, errors and conflicts (pg_stat_subscription_stats);
 * a warning when a slot retains more than `maxRetainedBytes` or has lost WAL.
 */
export async function reportingStatus(sources: readonly ReportingSource[], reporting: pg.ClientConfig, maxRetainedBytes: number): Promise<SubscriptionStatus[]> {
  const target = new pg.Client(reporting);
  await target.connect();
  try {
    const statuses: SubscriptionStatus[] = [];
    for (const source of sources) {
      const client = new pg.Client(source.admin);
      await client.connect();
      try {
        const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
        const names = reportingNames(source.service, database);
        const sub = (await target.query<{ enabled: boolean; streaming: boolean; apply: string; sync: string; conflicts: string }>(
          `SELECT s.subenabled AS enabled, EXISTS (SELECT 1 FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.pid IS NOT NULL AND w.relid IS NULL) AS streaming,
                  coalesce(st.apply_error_count, 0) AS apply, coalesce(st.sync_error_count, 0) AS sync,
                  coalesce(st.confl_insert_exists + st.confl_update_origin_differs + st.confl_update_exists + st.confl_update_missing
                           + st.confl_delete_origin_differs + st.confl_delete_missing + st.confl_multiple_unique_conflicts, 0) AS conflicts
           FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid
           WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [names.subscription],
        )).rows[0];
        const slot = (await client.query<{ lag: string | null; retained: string | null; wal_status: string | null; seconds: number | null }>(
          `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.confirmed_flush_lsn)::bigint AS lag, pg_wal_lsn_diff(pg_current_wal_lsn(), r.restart_lsn)::bigint AS retained,
                  r.wal_status, extract(epoch FROM coalesce(w.replay_lag, w.flush_lag, '0'::interval))::float8 AS seconds
           FROM pg_replication_slots r LEFT JOIN pg_stat_replication w ON w.pid = r.active_pid WHERE r.slot_name = $1`,
          [names.slot],
        )).rows[0];
        const warnings: string[] = [];
        if (!sub) warnings.push('no subscription: run `archipelago start` or `reporting resync`');
        else if (!sub.enabled) warnings.push('subscription disabled: its slot retains WAL until it is enabled');
        if (!slot) warnings.push('no replication slot in the source');
        else if (slot.wal_status === 'lost') warnings.push('the slot lost WAL it needed (max_slot_wal_keep_size): run `reporting resync`');
        else if (Number(slot.retained) > maxRetainedBytes) warnings.push(`the slot retains ${slot.retained} bytes of WAL (more than ${maxRetainedBytes})`);
        if (sub && Number(sub.apply) > 0) warnings.push('apply errors: see the reporting PostgreSQL log');
        statuses.push({
          service: source.service.key,
          subscription: names.subscription,
          enabled: sub?.enabled ?? false,
          streaming: sub?.streaming ?? false,
          lagBytes: slot?.lag == null ? null : Number(slot.lag),
          lagSeconds: slot ? (Number(slot.lag) === 0 ? 0 : slot.seconds) : null,
          retainedBytes: slot?.retained == null ? null : Number(slot.retained),
          walStatus: slot?.wal_status ?? null,
          applyErrors: Number(sub?.apply ?? 0),
          syncErrors: Number(sub?.sync ?? 0),
          conflicts: Number(sub?.conflicts ?? 0),
          warnings,
        });
      } finally {
        await client.end();
      }
    }
    return statuses;
  } finally {
    await target.end();
  }
}

/**
 * Rebuilds one service's copy from scratch: its subscription, slot and schema go, then
 * `syncReporting` makes them again and copies every table. The other sources are not touched.
 */
export async function resyncReporting(source: ReportingSource, reporting: pg.ClientConfig, replicatorPassword: string): Promise<SourceSyncResult> {
  const target = new pg.Client(reporting);
  const client = new pg.Client(source.admin);
  await target.connect();
  await client.connect();
  try {
    const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
    const names = reportingNames(source.service, database);
    const exists = await target.query('SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())', [names.subscription]);
    if (exists.rowCount) {
      // Detached from its slot first: dropping it through the subscription would connect back to the source.
      await target.query(`ALTER SUBSCRIPTION ${ident(names.subscription)} DISABLE`);
      await target.query(`ALTER SUBSCRIPTION ${ident(names.subscription)} SET (slot_name = NONE)`);
      await target.query(`DROP SUBSCRIPTION ${ident(names.subscription)}`);
    }
    await dropSlot(client, names.slot);
    await target.query(`DROP SCHEMA IF EXISTS ${ident(names.schema)} CASCADE`);
  } finally {
    await client.end();
    await target.end();
  }
  const [result] = await syncReporting({ sources: [source], reporting, replicatorPassword });
  return result!;
}

// Waits for the walsender to let go of the slot (it notices the disabled subscription), then drops
// it and any table-sync slot the subscription left behind.
async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { rows } = await client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (rows.length === 0) return;
    if (!rows[0]!.active) {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`replication slot ${slot} is still in use`);
}

/**
 * A logical message in every source, so a slot on an idle database still advances (its WAL would
 * otherwise be pinned by the last change reporting confirmed). PostgreSQL 18's keepalives already
 * advanced an idle slot on the shared cluster in our test; the heartbeat is the belt for the rest.
 * Failures are passed to `onError`.
 */
export async function emitHeartbeats(sources: readonly ReportingSource[], onError: (service: string, error: unknown) => void = () => undefined): Promise<void> {
  for (const source of sources) {
    const client = new pg.Client({ ...source.admin, application_name: 'reporting-heartbeat' });
    try {
      await client.connect();
      await client.query(`SELECT pg_logical_emit_message(true, 'archipelago.reporting', 'heartbeat')`);
    } catch (error) {
      onError(source.service.key, error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
