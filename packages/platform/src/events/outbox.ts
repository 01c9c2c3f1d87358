import { sql, type Kysely, type Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import { markIdempotentWrite } from '../idempotency/context.ts';
import type { EventEnvelope, EventMetadata, NewEvent } from './envelope.ts';
import { assertEventPayloads, checkingEventPayloads } from './payloads.ts';
import { uuidv7 } from './uuid.ts';

/**
 * Creates the outbox table (version 1) in the current schema. Call it from a service migration,
 * so the table's shape is frozen in that service's history:
 *
 * @example
 * export async function up(db: Kysely<unknown>) { await createOutboxTableV1(db); }
 * export async function down(db: Kysely<unknown>) { await dropOutboxTableV1(db); }
 */
export async function createOutboxTableV1(db: Kysely<unknown>): Promise<void> {
  // (tx_id, seq) orders the feed: tx_id is the writing transaction's id, seq the order within it.
  await sql`
    CREATE TABLE outbox (
      tx_id             xid8 NOT NULL DEFAULT pg_current_xact_id(),
      seq               bigint GENERATED ALWAYS AS IDENTITY,
      id                uuid NOT NULL UNIQUE,
      type              text NOT NULL,
      aggregate_type    text NOT NULL,
      aggregate_id      text NOT NULL,
      aggregate_version bigint NOT NULL,
      payload           jsonb NOT NULL,
      metadata          jsonb NOT NULL DEFAULT '{}',
      occurred_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tx_id, seq)
    )`.execute(db);
  // One wake-up per writing statement (not per row) for long-polling readers; only a hint.
  await sql`
    CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`.execute(db);
}

export async function dropOutboxTableV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE outbox`.execute(db);
  await sql`DROP FUNCTION outbox_notify()`.execute(db);
}

/** The LISTEN channel on which a schema's outbox announces new rows. */
export const outboxChannel = (schema: string) => `${schema}_outbox`;

interface OutboxRow {
  tx_id: string;
  seq: number;
  id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: number;
  payload: unknown;
  metadata: EventEnvelope['metadata'];
  occurred_at: Date;
}

// Only the fields an event carries: a caller's wider request context (an address, say) stays out of the feed.
function eventMetadata(metadata: EventMetadata | undefined): EventMetadata {
  const { userId, correlationId, causationId } = metadata ?? {};
  return { ...(userId === undefined ? {} : { userId }), ...(correlationId === undefined ? {} : { correlationId }), ...(causationId === undefined ? {} : { causationId }) };
}

/**
 * Records events in the transaction that makes the change: both commit, or neither does. In a
 * request with an `Idempotency-Key`, the key is marked committed in the same transaction. Under
 * test, each payload is checked against its type's declared schema (a drifting producer fails).
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   const label = await labels.insert(trx, input);
 *   await appendEvents(trx, [{ type: 'label.created', aggregateType: 'label', aggregateId: label.id, aggregateVersion: 1, payload: label }]);
 * });
 */
export async function appendEvents<DB>(trx: Transaction<DB>, events: readonly NewEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  if (checkingEventPayloads()) assertEventPayloads(events);
  await markIdempotentWrite(trx);
  const ids = events.map(() => uuidv7());
  const rows = events.map((e, i) => sql`(${ids[i]}::uuid, ${e.type}, ${e.aggregateType}, ${e.aggregateId}, ${e.aggregateVersion}, ${JSON.stringify(e.payload)}::jsonb, ${JSON.stringify(eventMetadata(e.metadata))}::jsonb)`);
  await sql`
    INSERT INTO outbox (id, type, aggregate_type, aggregate_id, aggregate_version, payload, metadata)
    VALUES ${sql.join(rows)}`.execute(trx);
  return ids;
}

/** A feed position: after the event at (transaction id, sequence). */
export interface OutboxPosition {
  readonly txId: string;
  readonly seq: number;
}

const POSITION = /^(\d{1,20})-(\d{1,19})$/;

export function formatPosition(position: OutboxPosition): string {
  return `${position.txId}-${position.seq}`;
}

/** Parses a position from a client; a malformed one is a 400 naming the field. */
export function parsePosition(text: string, field = 'after'): OutboxPosition {
  const match = POSITION.exec(text);
  if (!match) {
    throw new AppError('VALIDATION_FAILED', `"${text}" is not an event feed position`, {
      fields: [{ field, message: 'must look like <transaction id>-<sequence>, as returned in an event\'s position', value: text }],
    });
  }
  return { txId: match[1]!, seq: Number(match[2]) };
}

/**
 * The outbox horizon, in the statement's snapshot: the oldest transaction id still running that
 * could yet write to this outbox, or the snapshot's xmax when none is. Rows older than it are
 * settled: no transaction can still commit a row before them in feed order.
 *
 * Only a transaction of this database can write this outbox, so the running ids the snapshot
 * lists (`pg_snapshot_xip`) count unless `pg_stat_activity` shows them as a transaction of another
 * database of the cluster (a consumer's commit waiting for its WAL flush, reporting's apply or
 * table-sync worker). Those are told apart positively: an id whose backend ended after the
 * snapshot, or that no backend shows (a prepared transaction), still counts. A transaction with no
 * id yet takes one past the snapshot's xmax, after every row this snapshot can see.
 * An uncorrelated subquery (SQL text, an xid8): PostgreSQL evaluates it once, and only when a row needs it.
 */
export const OUTBOX_HORIZON = `(
  SELECT coalesce(min(running), pg_snapshot_xmax(pg_current_snapshot()))
  FROM pg_snapshot_xip(pg_current_snapshot()) AS running
  WHERE running::xid NOT IN (
    SELECT backend_xid FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))`;
const outboxHorizon = sql.raw(OUTBOX_HORIZON);

/**
 * Reads committed events after `after`, in feed order, up to `limit`.
 *
 * Only rows of transactions older than every transaction still running that could yet write to
 * this outbox are returned (`outboxHorizon`). A transaction that started earlier but commits
 * later therefore holds back the rows after it instead of being skipped: a reader that stores
 * the last position it applied never misses an event.
 */
export async function readOutbox<DB>(db: Kysely<DB>, source: string, options: { after?: OutboxPosition; limit: number }): Promise<EventEnvelope[]> {
  return (await readOutboxPage(db, source, options)).events;
}

/**
 * `readOutbox`, and whether committed rows follow that are held back (an older transaction of this
 * database is still running): they become readable when it ends, which no NOTIFY of this outbox
 * announces unless it wrote to it, so a waiting reader should look again soon.
 */
export async function readOutboxPage<DB>(db: Kysely<DB>, source: string, options: { after?: OutboxPosition; limit: number }): Promise<{ events: EventEnvelope[]; heldBack: boolean }> {
  const after = options.after ?? { txId: '0', seq: 0 };
  // Ordered by tx_id, the settled rows come before every held-back one. Most are older than the
  // snapshot's xmin, which spares the horizon's look at pg_stat_activity.
  const { rows } = await sql<OutboxRow & { settled: boolean }>`
    SELECT tx_id::text AS tx_id, seq, id, type, aggregate_type, aggregate_id, aggregate_version, payload, metadata, occurred_at,
           tx_id < pg_snapshot_xmin(pg_current_snapshot()) OR tx_id < ${outboxHorizon} AS settled
    FROM outbox
    WHERE (tx_id, seq) > (${after.txId}::xid8, ${after.seq}::bigint)
    ORDER BY outbox.tx_id, outbox.seq -- the columns: a bare tx_id would sort the text alias ('1002' < '967')
    LIMIT ${options.limit}`.execute(db);
  const settled = rows.findIndex((row) => !row.settled);
  const readable = settled === -1 ? rows : rows.slice(0, settled);
  return { events: readable.map((row) => toEnvelope(source, row)), heldBack: settled !== -1 };
}

function toEnvelope(source: string, row: OutboxRow): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    source,
    aggregate: { type: row.aggregate_type, id: row.aggregate_id, version: row.aggregate_version },
    occurredAt: row.occurred_at.toISOString(),
    payload: row.payload,
    metadata: row.metadata,
    position: formatPosition({ txId: row.tx_id, seq: row.seq }),
  };
}

/**
 * Whether committed events follow `after`, readable yet or not. One held back by an older
 * transaction still running (of this database: `outboxHorizon`) sends
 * no NOTIFY when that one ends, so a reader that read up to `after` and finds this true looks
 * again soon. (Asked apart from the read, it also counts what became readable in between.)
 */
export async function outboxHasEventsAfter<DB>(db: Kysely<DB>, after: OutboxPosition | undefined): Promise<boolean> {
  const from = after ?? { txId: '0', seq: 0 };
  const { rows } = await sql<{ found: boolean }>`
    SELECT EXISTS (SELECT 1 FROM outbox WHERE (tx_id, seq) > (${from.txId}::xid8, ${from.seq}::bigint)) AS found`.execute(db);
  return rows[0]!.found;
}

/**
 * The position of the newest event a reader can be handed now (or, with none kept, the newest
 * pruned): reading after it yields exactly the events committed later. A broadcast starts there.
 */
export async function outboxHead<DB>(db: Kysely<DB>): Promise<OutboxPosition | undefined> {
  const { rows } = await sql<{ tx_id: string; seq: number }>`
    SELECT tx_id::text AS tx_id, seq FROM (
      (SELECT tx_id, seq FROM outbox WHERE tx_id < ${outboxHorizon} ORDER BY tx_id DESC, seq DESC LIMIT 1)
      UNION ALL SELECT tx_id, seq FROM outbox_pruned
    ) AS candidates ORDER BY candidates.tx_id DESC, candidates.seq DESC LIMIT 1`.execute(db);
  return rows[0] ? { txId: rows[0].tx_id, seq: rows[0].seq } : undefined;
}

/**
 * Creates the outbox's retention mark (version 1): the newest position pruned, so the feed can
 * tell a consumer that the events it asks for are gone instead of silently skipping them.
 */
export async function createOutboxRetentionV1(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE outbox_pruned (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      tx_id     xid8 NOT NULL,
      seq       bigint NOT NULL,
      pruned_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function dropOutboxRetentionV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE outbox_pruned`.execute(db);
}

/** The newest position pruned from the outbox, if any was. */
export async function prunedThrough<DB>(db: Kysely<DB>): Promise<OutboxPosition | undefined> {
  const { rows } = await sql<{ tx_id: string; seq: number }>`SELECT tx_id::text AS tx_id, seq FROM outbox_pruned`.execute(db);
  return rows[0] ? { txId: rows[0].tx_id, seq: rows[0].seq } : undefined;
}

/** Whether `a` comes before `b` in feed order. */
export function isBefore(a: OutboxPosition, b: OutboxPosition): boolean {
  const [ax, bx] = [BigInt(a.txId), BigInt(b.txId)];
  return ax < bx || (ax === bx && a.seq < b.seq);
}

/**
 * Deletes outbox rows older than `olderThanMs`, oldest first, in batches, and moves the retention
 * mark to the newest position deleted. Returns how many rows went. Runs as the `outbox.prune` job.
 */
export async function pruneOutbox<DB>(db: Kysely<DB>, options: { olderThanMs: number; batchSize?: number }): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await sql<{ deleted: number }>`
      WITH gone AS (
        DELETE FROM outbox WHERE (tx_id, seq) IN (
          SELECT tx_id, seq FROM outbox WHERE occurred_at < now() - make_interval(secs => ${options.olderThanMs / 1000})
          ORDER BY tx_id, seq LIMIT ${options.batchSize ?? 5_000})
        RETURNING tx_id, seq
      ), mark AS (
        INSERT INTO outbox_pruned (tx_id, seq)
        SELECT tx_id, seq FROM gone ORDER BY tx_id DESC, seq DESC LIMIT 1
        ON CONFLICT (singleton) DO UPDATE SET tx_id = excluded.tx_id, seq = excluded.seq, pruned_at = now()
        WHERE (outbox_pruned.tx_id, outbox_pruned.seq) < (excluded.tx_id, excluded.seq)
      )
      SELECT count(*)::int AS deleted FROM gone`.execute(db);
    const deleted = rows[0]?.deleted ?? 0;
    total += deleted;
    if (deleted < (options.batchSize ?? 5_000)) return total;
  }
}

/**
 * The `outbox.prune` job of a producing service: keeps `retainMs` of events (default 7 days, so a
 * consumer down for a week still catches up from the feed).
 */
export function pruneOutboxJob<DB>(db: Kysely<DB>, retainMs = OUTBOX_RETENTION_MS): () => Promise<{ pruned: number }> {
  return async () => ({ pruned: await pruneOutbox(db, { olderThanMs: retainMs }) });
}

/** Default outbox retention. */
export const OUTBOX_RETENTION_MS = 7 * 24 * 3_600_000;
