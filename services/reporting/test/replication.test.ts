import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, type Service } from '@archipelago/registry';
import { detachColumnLists, READER_ROLE, REPLICATOR_ROLE, reportingNames, reportingStatus, resyncReporting, syncReporting, type ReportingSource } from '@archipelago/platform/replication';
import { superuserClient, useTestDatabase, type TestDatabase } from '@archipelago/platform/testing';
import { useTestReporting } from '@archipelago/platform/testing/reporting';

const registry = loadRegistry(undefined, {});

// The real declarations, plus a probe table in core that the test migrates at will.
const core: Service = { ...registry.service('core'), reporting: { publishes: [...(registry.service('core').reporting?.publishes ?? []), 'probe'] } };
const iam = registry.service('iam');
const masterdata = registry.service('masterdata');

let databases: { core: TestDatabase; iam: TestDatabase; masterdata: TestDatabase; reporting: TestDatabase };
let replication: Awaited<ReturnType<typeof useTestReporting>>;
const superuser = (database: string) => replication.superuser(database);

// The registry's iam and masterdata; core with the test's declaration (the probe tables).
function sources(overrides: { core?: Service } = {}): ReportingSource[] {
  return replication.sources.map((s) => (s.service.key === 'core' ? { ...s, service: overrides.core ?? core } : s));
}
const sync = (overrides: { core?: Service } = {}) =>
  syncReporting({ sources: sources(overrides), reporting: superuser(databases.reporting.name), replicatorPassword: replication.password, readers: ['reporting_app'] });

async function query<T extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = await superuserClient(database);
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}
const inCore = (text: string, values: unknown[] = []) => query(databases.core.name, text, values);
const inReporting = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => query<T>(databases.reporting.name, text, values);

// Replication is asynchronous: polls until `check` holds (the test's timeout bounds it).
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const checksum = async (database: string, table: string) =>
  (await query<{ n: string; sum: string | null }>(database, `SELECT count(*) AS n, md5(string_agg(t::text, ',' ORDER BY t.id)) AS sum FROM ${table} t`))[0]!;
const probeMatches = async () => {
  const [source, copy] = await Promise.all([checksum(databases.core.name, 'core.probe'), checksum(databases.reporting.name, 'core.probe')]);
  return { source, copy, same: source.n === copy.n && source.sum === copy.sum };
};
const caughtUp = () => eventually(probeMatches, (m) => m.same);

// Count and checksum of every copied table against its source, over the copy's columns (the
// published ones) in one order, rows sorted by their text.
async function everyTableMatches(): Promise<{ table: string; same: boolean }[]> {
  const columns = await inReporting<{ schema: string; table: string; columns: string[] }>(
    `SELECT table_schema AS schema, table_name AS table, array_agg(quote_ident(column_name::text) ORDER BY column_name) AS columns
     FROM information_schema.columns WHERE table_schema IN ('core', 'iam', 'masterdata') GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  const source = { core: databases.core.name, iam: databases.iam.name, masterdata: databases.masterdata.name } as Record<string, string>;
  return Promise.all(
    columns.map(async ({ schema, table, columns: list }) => {
      const sum = `SELECT count(*) AS n, md5(coalesce(string_agg(r, ',' ORDER BY r), '')) AS sum FROM (SELECT row(${list.join(', ')})::text AS r FROM ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}) t`;
      const [a, b] = await Promise.all([query(source[schema]!, sum), inReporting(sum)]);
      return { table: `${schema}.${table}`, same: JSON.stringify(a) === JSON.stringify(b) };
    }),
  );
}

beforeAll(async () => {
  databases = {
    core: await useTestDatabase('core'),
    iam: await useTestDatabase('iam'),
    masterdata: await useTestDatabase('masterdata'),
    reporting: await useTestDatabase('reporting'),
  };
  await inCore(`CREATE TABLE core.probe (id int PRIMARY KEY, label text NOT NULL, note text); ALTER TABLE core.probe OWNER TO core_owner`);
  await inCore(`INSERT INTO core.probe SELECT g, 'before ' || g, NULL FROM generate_series(1, 50) g`);
  await query(databases.iam.name, `INSERT INTO iam.users (email, display_name, password_hash) VALUES ('secret@example.test', 'Secret Keeper', 'argon2-hash-never-leaves')`);
  replication = await useTestReporting(databases.reporting, [databases.core, databases.iam, databases.masterdata]);
  await sync();
}, 60_000);

// Apply workers in error retry every 5 s: on a loaded machine a schema change takes a while to settle.
describe('reporting by logical replication', { timeout: 120_000 }, () => {
  it('copies what existed, then inserts, updates and deletes follow', async () => {
    await caughtUp();
    await inCore(`INSERT INTO core.probe VALUES (51, 'new', NULL); UPDATE core.probe SET label = 'changed' WHERE id = 2; DELETE FROM core.probe WHERE id = 3`);
    await caughtUp();
    const rows = await inReporting<{ id: number; label: string }>('SELECT id, label FROM core.probe WHERE id IN (2, 3, 51) ORDER BY id');
    expect(rows).toEqual([{ id: 2, label: 'changed' }, { id: 51, label: 'new' }]);
  });

  it('one subscription per service, each on its own slot made apart', async () => {
    const subs = await inReporting<{ subname: string; subslotname: string; subpublications: string[] }>(
      'SELECT subname, subslotname, subpublications FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY subname',
    );
    expect(subs.map((s) => s.subslotname).sort()).toEqual(
      [reportingNames(core, databases.core.name), reportingNames(iam, databases.iam.name), reportingNames(masterdata, databases.masterdata.name)].map((n) => n.slot).sort(),
    );
    expect(subs.every((s) => s.subpublications.join() === 'reporting')).toBe(true);
  });

  it('no secret leaves its database: not in the publication, not in the copy, not even readable by the replicator', async () => {
    await eventually(() => inReporting<{ n: string }>(`SELECT count(*) AS n FROM iam.users WHERE email = 'secret@example.test'`), (r) => r[0]!.n === '1');
    const published = await query<{ tablename: string; attnames: string[] }>(databases.iam.name, `SELECT tablename, attnames FROM pg_publication_tables WHERE pubname = 'reporting'`);
    const users = published.find((p) => p.tablename === 'users')!;
    expect(users.attnames).toContain('display_name');
    expect(users.attnames).not.toContain('password_hash');
    const forbidden = ['sessions', 'refresh_tokens', 'api_tokens', 'password_resets', 'signing_keys', 'outbox', 'idempotency_keys', 'job_status', 'schema_migrations'];
    for (const db of [databases.iam.name, databases.core.name, databases.masterdata.name]) {
      const tables = (await query<{ tablename: string }>(db, `SELECT tablename FROM pg_publication_tables WHERE pubname = 'reporting'`)).map((t) => t.tablename);
      expect(tables.filter((t) => forbidden.includes(t) || t.startsWith('outbox'))).toEqual([]);
    }
    const copied = await inReporting<{ table_schema: string; table_name: string; column_name: string }>(
      `SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE table_schema IN ('core', 'iam', 'masterdata')`,
    );
    expect(copied.filter((c) => /hash|secret|private|password/.test(c.column_name))).toEqual([]);
    expect(copied.filter((c) => forbidden.includes(c.table_name) || c.table_name.startsWith('outbox'))).toEqual([]);
    const readable = await query<{ ok: boolean }>(databases.iam.name, `SELECT has_column_privilege($1, 'iam.users', 'password_hash', 'SELECT') AS ok`, [REPLICATOR_ROLE]);
    expect(readable[0]!.ok).toBe(false);
    const role = await query<{ rolsuper: boolean; rolreplication: boolean }>('postgres', 'SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = $1', [REPLICATOR_ROLE]);
    expect(role[0]).toEqual({ rolsuper: false, rolreplication: true });
  });

  it('is idempotent: a second run changes nothing and copies nothing', async () => {
    const again = await sync();
    expect(again.map((r) => [r.created, r.copied, r.altered])).toEqual(again.map(() => [false, [], []]));
    await inCore(`INSERT INTO core.probe VALUES (52, 'after rerun', NULL)`);
    await caughtUp();
  });

  it('a migration adding a column reaches reporting with the values written before, and new values flow', async () => {
    await inCore(`ALTER TABLE core.probe ADD COLUMN score int NOT NULL DEFAULT 7`);
    await inCore(`INSERT INTO core.probe (id, label, score) VALUES (53, 'scored', 42)`);
    const result = await sync();
    expect(result.find((r) => r.service === 'core')).toMatchObject({ altered: ['core.probe: added score'], copied: ['probe'] });
    await caughtUp();
    await inCore(`UPDATE core.probe SET score = 9 WHERE id = 1`);
    const { copy } = await caughtUp();
    expect(Number(copy.n)).toBeGreaterThan(50);
    expect(await inReporting('SELECT id, score FROM core.probe WHERE id IN (1, 4, 53) ORDER BY id')).toEqual([{ id: 1, score: 9 }, { id: 4, score: 7 }, { id: 53, score: 42 }]);
  });

  it('a column renamed or dropped does not break replication, and the copy follows', async () => {
    await inCore(`ALTER TABLE core.probe RENAME COLUMN note TO remark`);
    await inCore(`UPDATE core.probe SET remark = 'kept across the rename' WHERE id = 5`);
    await inCore(`ALTER TABLE core.probe DROP COLUMN score`);
    await inCore(`INSERT INTO core.probe (id, label, remark) VALUES (54, 'after drop', 'r')`);
    // A column the source dropped stays in the copy until replication has passed the drop (a sync
    // waits up to 10 s for that, then leaves it to the next one): sync until it is gone.
    const altered: string[] = [];
    await eventually(sync, (result) => {
      const core = result.find((r) => r.service === 'core')!.altered;
      altered.push(...core.filter((a) => !a.includes('kept until')));
      return !core.some((a) => a.includes('kept until'));
    });
    expect(altered.sort()).toEqual(['core.probe: dropped score', 'core.probe: renamed note to remark']);
    await caughtUp();
    expect(await inReporting('SELECT remark FROM core.probe WHERE id = 5')).toEqual([{ remark: 'kept across the rename' }]);
  });

  it('a column-listed table: its migration may drop a column, the table is copied afresh after', async () => {
    const client = new pg.Client({ connectionString: databases.iam.ownerUrl });
    await client.connect();
    try {
      await client.query(`ALTER TABLE iam.users ADD COLUMN nickname text DEFAULT 'nick'`);
      expect((await sync()).find((r) => r.service === 'iam')!.copied).toEqual(['users']);
      // Its copy done first: a column dropped under a running copy fails that copy once (a sync error, retried).
      await eventually(() => inReporting<{ n: number }>(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`), (r) => r[0]!.n === 0);
      // Without the detach, the publication's column list makes this migration fail.
      await expect(client.query(`ALTER TABLE iam.users DROP COLUMN nickname`)).rejects.toThrow(/depend/);
      await detachColumnLists(databases.iam.ownerUrl);
      await client.query(`ALTER TABLE iam.users DROP COLUMN nickname`);
      await client.query(`UPDATE iam.users SET display_name = 'Renamed while detached' WHERE email = 'secret@example.test'`);
    } finally {
      await client.end();
    }
    const result = await sync();
    expect(result.find((r) => r.service === 'iam')!.copied).toEqual(['users']);
    await eventually(() => inReporting<{ name: string }>(`SELECT display_name AS name FROM iam.users WHERE email = 'secret@example.test'`), (r) => r[0]?.name === 'Renamed while detached');
    const columns = await inReporting<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'iam' AND table_name = 'users'`);
    expect(columns.map((c) => c.column_name)).not.toContain('nickname');
  });

  it('a newly declared table is created, copied and followed', async () => {
    await inCore(`CREATE TABLE core.probe_extra (id int PRIMARY KEY, v text); ALTER TABLE core.probe_extra OWNER TO core_owner; INSERT INTO core.probe_extra VALUES (1, 'one')`);
    const extended: Service = { ...core, reporting: { publishes: [...(core.reporting?.publishes ?? []), 'probe_extra'] } };
    const result = await sync({ core: extended });
    expect(result.find((r) => r.service === 'core')!.copied).toEqual(['probe_extra']);
    await inCore(`INSERT INTO core.probe_extra VALUES (2, 'two')`);
    const rows = await eventually(() => inReporting<{ id: number }>('SELECT id FROM core.probe_extra ORDER BY id'), (r) => r.length === 2);
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('a subscription disabled and re-enabled, and an apply worker killed, catch up with nothing missing: row counts and checksums per table', async () => {
    const { subscription } = reportingNames(core, databases.core.name);
    await inReporting(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subscription)} DISABLE`);
    await inCore(`INSERT INTO core.probe (id, label) SELECT g, 'while disabled' FROM generate_series(1000, 1999) g; UPDATE core.probe SET label = 'upd' WHERE id % 7 = 0; DELETE FROM core.probe WHERE id % 11 = 0`);
    await inCore(`INSERT INTO core.orders (order_code, item_name, department_code) SELECT 'ORD-2026-' || lpad(g::text, 6, '0'), 'item ' || g, 'LAB' FROM generate_series(1, 300) g`);
    await inReporting(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subscription)} ENABLE`);
    await caughtUp();
    // Every source's apply worker killed in the middle of a stream of changes.
    await query(databases.masterdata.name, `INSERT INTO masterdata.labels (code, label, display_name) SELECT 'K' || g, 'killed ' || g, 'K' FROM generate_series(1, 200) g`);
    await inReporting(`SELECT pg_terminate_backend(pid) FROM pg_stat_subscription WHERE relid IS NULL AND pid IS NOT NULL AND subid IN (SELECT oid FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))`);
    await query(databases.masterdata.name, `UPDATE masterdata.labels SET label = label || ' again' WHERE code LIKE 'K%'; DELETE FROM masterdata.labels WHERE code IN ('K1', 'K2')`);
    await inCore(`UPDATE core.orders SET item_name = item_name || ' (changed)' WHERE order_code LIKE 'ORD-2026-0001%'`);
    const compared = await eventually(everyTableMatches, (tables) => tables.every((t) => t.same));
    expect(compared.map((t) => t.table)).toEqual(expect.arrayContaining(['core.orders', 'core.probe', 'iam.users', 'masterdata.labels']));
  });

  it('status shows every subscription streaming, with its lag, retained WAL, errors and conflicts', async () => {
    // The tests above kill workers and add tables mid-stream, and a table copy retried after such a
    // kill counts as a sync error; what this test checks is a quiet stream, so the counters start here.
    await inReporting(`SELECT pg_stat_reset_subscription_stats(oid) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    const statuses = await reportingStatus(sources(), superuser(databases.reporting.name), 1024 ** 3);
    expect(statuses.map((s) => s.service)).toEqual(['core', 'iam', 'masterdata']);
    for (const status of statuses) {
      expect(status).toMatchObject({ enabled: true, walStatus: 'reserved', syncErrors: 0, conflicts: 0 });
      expect(status.retainedBytes).toBeGreaterThanOrEqual(0);
      expect(status.lagBytes).toBeGreaterThanOrEqual(0);
    }
    const strict = await reportingStatus(sources(), superuser(databases.reporting.name), 0);
    expect(strict.every((s) => s.warnings.some((w) => /retains/.test(w)))).toBe(true);
  });

  it('resync of one service rebuilds its copy and leaves the others flowing', async () => {
    const before = await inReporting<{ subname: string; oid: number }>(`SELECT subname, oid FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY subname`);
    await inReporting(`DELETE FROM core.probe WHERE id = 1`); // damage only a resync repairs
    const result = await resyncReporting(sources()[0]!, superuser(databases.reporting.name), replication.password);
    expect(result).toMatchObject({ service: 'core', created: true });
    await query(databases.iam.name, `UPDATE iam.users SET display_name = 'During resync' WHERE email = 'secret@example.test'`);
    await eventually(() => inReporting<{ name: string }>(`SELECT display_name AS name FROM iam.users WHERE email = 'secret@example.test'`), (r) => r[0]?.name === 'During resync');
    await caughtUp();
    const after = await inReporting<{ subname: string; oid: number }>(`SELECT subname, oid FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY subname`);
    const changed = after.filter((a) => !before.some((b) => b.subname === a.subname && b.oid === a.oid)).map((a) => a.subname);
    expect(changed).toEqual([reportingNames(core, databases.core.name).subscription]);
  });

  it('reporting_reader reads the copies and cannot write them', async () => {
    const target = await superuserClient(databases.reporting.name);
    try {
      await target.query('BEGIN');
      await target.query(`SET LOCAL ROLE ${READER_ROLE}`);
      const rows = await target.query('SELECT count(*) FROM core.probe');
      expect(rows.rowCount).toBe(1);
      await expect(target.query(`INSERT INTO core.probe (id, label) VALUES (99999, 'x')`)).rejects.toThrow(/permission denied/);
      await target.query('ROLLBACK');
    } finally {
      await target.end();
    }
  });
});
