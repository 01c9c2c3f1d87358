import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { outboxChannel, type OutboxPosition } from '../outbox.ts';

/**
 * Creates the relay's mark (version 1) in a producer's schema: per transport, the newest outbox
 * position the broker confirmed. Call it from the producer's migration, beside the outbox.
 */
export async function createOutboxRelayV1(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE outbox_relayed (
      transport  text PRIMARY KEY,
      tx_id      xid8 NOT NULL,
      seq        bigint NOT NULL,
      relayed_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function dropOutboxRelayV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE outbox_relayed`.execute(db);
}

/** The newest position relayed through `transport` (undefined: nothing yet, start at the beginning). */
export async function relayedThrough<DB>(db: Kysely<DB>, transport: string): Promise<OutboxPosition | undefined> {
  const { rows } = await sql<{ tx_id: string; seq: number }>`SELECT tx_id::text AS tx_id, seq FROM outbox_relayed WHERE transport = ${transport}`.execute(db);
  return rows[0] ? { txId: rows[0].tx_id, seq: Number(rows[0].seq) } : undefined;
}

/** Moves the mark forward (never back: a deposed leader's late write cannot undo a newer one). */
export async function markRelayed<DB>(db: Kysely<DB>, transport: string, position: OutboxPosition): Promise<void> {
  await sql`
    INSERT INTO outbox_relayed (transport, tx_id, seq) VALUES (${transport}, ${position.txId}::xid8, ${position.seq})
    ON CONFLICT (transport) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq, relayed_at = now()
    WHERE (outbox_relayed.tx_id, outbox_relayed.seq) < (excluded.tx_id, excluded.seq)`.execute(db);
}

const RELAY_LOCK_CLASS = 0x52454c59; // 'RELY'

/**
 * Tries to become the one relay of `source` on a session of its own: the lock lasts as long as
 * that connection (a killed leader's session ends, and another instance takes over).
 */
export async function tryLeadRelay(client: pg.Client, source: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2) & 2147483647) AS locked', [RELAY_LOCK_CLASS, source]);
  return rows[0]!.locked;
}

/** Wakes the leader when the outbox gets rows (a hint; it also polls). */
export async function listenForOutbox(client: pg.Client, schema: string, wake: () => void): Promise<void> {
  client.on('notification', wake);
  await client.query(`LISTEN ${pg.escapeIdentifier(outboxChannel(schema))}`);
}
