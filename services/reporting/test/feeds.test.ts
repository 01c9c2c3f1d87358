import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvents, readOutbox } from '@archipelago/platform/events';
import { superuserClient, useTestDatabase, type TestDatabase } from '@archipelago/platform/testing';
import { useTestReporting } from '@archipelago/platform/testing/reporting';

// With the embedded default, reporting shares the services' cluster. An event feed serves only rows
// older than every transaction of its own database that holds a transaction id, so reporting's
// writing transactions do not hold it; these tests show that, that reporting's readers never hold
// an id anyway, and that their transactions are bounded.

const TIMEOUT_MS = 1_000;
let core: TestDatabase;
let replication: Awaited<ReturnType<typeof useTestReporting>>;
let reportingName: string;
const opened: pg.Client[] = [];

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => undefined); // a session the server ends is what some tests expect
  await client.connect();
  opened.push(client);
  return client;
}

let aggregate = 0;
async function appendOne(): Promise<string> {
  const id = `probe-${++aggregate}`;
  await core.db.transaction().execute((trx) => appendEvents(trx, [{ type: 'probe.created', aggregateType: 'probe', aggregateId: id, aggregateVersion: 1, payload: {} }]));
  return id;
}
const served = async () => (await readOutbox(core.db, 'core', { limit: 1000 })).map((e) => e.aggregate.id);

async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  core = await useTestDatabase('core');
  const iam = await useTestDatabase('iam');
  const masterdata = await useTestDatabase('masterdata');
  const reporting = await useTestDatabase('reporting');
  reportingName = reporting.name;
  replication = await useTestReporting(reporting, [core, iam, masterdata]);
  await replication.sync({ queryTimeoutMs: TIMEOUT_MS });
  // The initial copies (table-sync workers, each a writing transaction) are over before the tests.
  const admin = await connect(replication.superuser(reporting.name));
  await eventually(() => admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`), (r) => r.rows[0]!.n === 0);
}, 60_000);

afterAll(async () => {
  for (const client of opened) await client.end().catch(() => undefined);
});

describe("reporting's readers and the event feeds of the cluster they share", () => {
  it("a reader's open transaction, snapshot held, does not hold back a service's feed, nor does reporting's writing one; a transaction id in the service's own database would", async () => {
    const reader = await connect(replication.reader());
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await reader.query('SELECT count(*) FROM core.orders');
    const whileReading = await appendOne();
    expect(await served()).toContain(whileReading);
    await reader.query('ROLLBACK');

    // A writing transaction of reporting's database (a table-sync worker's copy, say) holds an id,
    // but cannot write core's outbox: the feed does not wait for it.
    const copier = await superuserClient(reportingName);
    try {
      await copier.query('BEGIN');
      await copier.query('SELECT pg_current_xact_id()');
      const elsewhere = await appendOne();
      expect(await served()).toContain(elsewhere);
      await copier.query('COMMIT');
    } finally {
      await copier.end();
    }

    // The control: a transaction holding an id in core's own database holds the feed back.
    const writer = await superuserClient(core.name);
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT pg_current_xact_id()');
      const held = await appendOne();
      expect(await served()).not.toContain(held);
      await writer.query('COMMIT');
      expect(await served()).toContain(held);
    } finally {
      await writer.end();
    }
  });

  it('a reader cannot get a transaction id, even in a read-write transaction', async () => {
    const reader = await connect(replication.reader());
    const attempts = [
      'SELECT pg_current_xact_id()',
      'SELECT txid_current()',
      'CREATE TEMP TABLE scratch (id int)',
      "INSERT INTO core.orders (order_code, item_name, department_code) VALUES ('X', 'x', 'X')",
      'SELECT id FROM core.orders FOR SHARE',
    ];
    for (const attempt of attempts) {
      await reader.query('BEGIN READ WRITE');
      await expect(reader.query(attempt), attempt).rejects.toThrow(/permission denied/);
      await reader.query('ROLLBACK');
    }
  });

  it("a reader's statement and its idle transaction are ended by the bound", async () => {
    const reader = await connect(replication.reader());
    await expect(reader.query(`SELECT pg_sleep(${(TIMEOUT_MS * 5) / 1000})`)).rejects.toMatchObject({ code: '57014' });
    await reader.query('BEGIN');
    await reader.query('SELECT 1');
    const pid = (await reader.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const admin = await superuserClient();
    try {
      await eventually(() => admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]), (r) => r.rowCount === 0);
    } finally {
      await admin.end();
    }
    await expect(reader.query('SELECT 1')).rejects.toThrow();
  });
});
