/**
 * How long a subscription's initial copy holds back the event feeds of its cluster:
 * `node --import tsx bench/src/copy-hold.ts [rows]`. Starts a throwaway embedded cluster, fills a
 * table with `rows` rows of about 100 bytes, subscribes a second database to it on the same
 * cluster (slot made apart, as reporting does) and asks every 20 ms, in a third database, the
 * feed's question: is a transaction that committed just now already older than the outbox
 * horizon (`feedsHeldMs`)? And the question it asked before the horizon left out other
 * databases: older than every running transaction of the cluster (`clusterXminHeldMs`)?
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '@archipelago/platform';
import { startEmbeddedPostgres } from '@archipelago/platform/embedded';
import { OUTBOX_HORIZON } from '@archipelago/platform/events';

const rows = Number(process.argv[2] ?? 200_000);
const dir = await mkdtemp(path.join(tmpdir(), 'copy-hold-'));
const cluster = await startEmbeddedPostgres({ dataDir: dir, port: await freePort() });
const clients: pg.Client[] = [];
const open = async (database: string) => {
  const client = new pg.Client(cluster.connection(database));
  await client.connect();
  clients.push(client);
  return client;
};
try {
  const admin = await open('postgres');
  await admin.query('CREATE DATABASE source');
  await admin.query('CREATE DATABASE copy');
  const source = await open('source');
  const copy = await open('copy');
  await source.query(`CREATE TABLE t (id int PRIMARY KEY, a text, b timestamptz DEFAULT now()); CREATE PUBLICATION p FOR TABLE t`);
  await source.query(`INSERT INTO t SELECT g, repeat('x', 80) FROM generate_series(1, $1::int) g`, [rows]);
  await copy.query('CREATE TABLE t (id int PRIMARY KEY, a text, b timestamptz)');
  await source.query(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`);
  const { password } = cluster.connection('postgres');
  const began = Date.now();
  await copy.query(`CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 port=${cluster.port} dbname=source user=postgres password=${String(password)}' PUBLICATION p WITH (create_slot = false, slot_name = 's')`);
  let heldMs = 0;
  let clusterXminHeldMs = 0;
  let last = Date.now();
  for (;;) {
    const xid = (await admin.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;
    const { served, clusterServed } = (await admin.query<{ served: boolean; clusterServed: boolean }>(
      `SELECT $1::xid8 < ${OUTBOX_HORIZON} AS served, $1::xid8 < pg_snapshot_xmin(pg_current_snapshot()) AS "clusterServed"`, [xid])).rows[0]!;
    const now = Date.now();
    if (!served) heldMs += now - last;
    if (!clusterServed) clusterXminHeldMs += now - last;
    last = now;
    const copying = Number((await copy.query<{ n: string }>(`SELECT count(*) AS n FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')`)).rows[0]!.n);
    if (copying === 0 && served && clusterServed) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.stdout.write(`${JSON.stringify({ rows, copyMs: Date.now() - began, feedsHeldMs: heldMs, clusterXminHeldMs })}\n`);
  await copy.query('ALTER SUBSCRIPTION sub DISABLE');
  await copy.query('ALTER SUBSCRIPTION sub SET (slot_name = NONE)');
  await copy.query('DROP SUBSCRIPTION sub');
} finally {
  for (const client of clients) await client.end().catch(() => undefined);
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
