import { sql, type Kysely, type Transaction } from 'kysely';

/**
 * Creates the idempotency-key table (version 1) in the current schema. Call it from a service
 * migration, like the outbox, so the table's shape is frozen in that service's history:
 *
 * @example
 * export async function up(db: Kysely<unknown>) { await createIdempotencyKeysTableV1(db); }
 * export async function down(db: Kysely<unknown>) { await dropIdempotencyKeysTableV1(db); }
 */
export async function createIdempotencyKeysTableV1(db: Kysely<unknown>): Promise<void> {
  // One row per (caller, key). `attempt` fences a stale attempt out: only the attempt named in
  // the row may mark the write committed or store the response.
  await sql`
    CREATE TABLE idempotency_keys (
      principal       text NOT NULL,
      key             text NOT NULL,
      fingerprint     text NOT NULL,
      attempt         uuid NOT NULL,
      state           text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress', 'completed')),
      committed       boolean NOT NULL DEFAULT false,
      response_status integer,
      response_type   text,
      response_body   text,
      response_kept   boolean,
      started_at      timestamptz NOT NULL DEFAULT now(),
      completed_at    timestamptz,
      expires_at      timestamptz NOT NULL,
      PRIMARY KEY (principal, key)
    )`.execute(db);
  await sql`CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at)`.execute(db);
}

export async function dropIdempotencyKeysTableV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE idempotency_keys`.execute(db);
}

/** One key of one caller, as the HTTP hook decides on it. */
export interface IdempotencyRecord {
  readonly fingerprint: string;
  readonly attempt: string;
  readonly state: 'in_progress' | 'completed';
  /** The attempt's write transaction committed (marked inside it). */
  readonly committed: boolean;
  readonly response_status: number | null;
  readonly response_type: string | null;
  readonly response_body: string | null;
  /** False when the response was not stored (it held a secret, or was not text). */
  readonly response_kept: boolean | null;
  /** In progress for longer than the stale limit: its process is presumed dead. */
  readonly stale: boolean;
}

export interface KeyOfCaller {
  readonly principal: string;
  readonly key: string;
}

const seconds = (ms: number) => ms / 1000;

/** The only code that reads or writes a service's idempotency keys. */
export function idempotencyKeys(db: Kysely<unknown>) {
  return {
    /** Inserts the key in progress for `attempt` (replacing an expired row); false when it is taken. */
    async claim(k: KeyOfCaller & { fingerprint: string; attempt: string; retentionMs: number }): Promise<boolean> {
      const { rows } = await sql<{ attempt: string }>`
        INSERT INTO idempotency_keys (principal, key, fingerprint, attempt, expires_at)
        VALUES (${k.principal}, ${k.key}, ${k.fingerprint}, ${k.attempt}, now() + make_interval(secs => ${seconds(k.retentionMs)}))
        ON CONFLICT (principal, key) DO UPDATE SET
          fingerprint = excluded.fingerprint, attempt = excluded.attempt, state = 'in_progress', committed = false,
          response_status = NULL, response_type = NULL, response_body = NULL, response_kept = NULL,
          started_at = now(), completed_at = NULL, expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at <= now()
        RETURNING attempt`.execute(db);
      return rows[0]?.attempt === k.attempt;
    },
    async find(k: KeyOfCaller, staleAfterMs: number): Promise<IdempotencyRecord | undefined> {
      const { rows } = await sql<IdempotencyRecord>`
        SELECT fingerprint, attempt, state, committed, response_status, response_type, response_body, response_kept,
               (state = 'in_progress' AND started_at < now() - make_interval(secs => ${seconds(staleAfterMs)})) AS stale
        FROM idempotency_keys
        WHERE principal = ${k.principal} AND key = ${k.key} AND expires_at > now()`.execute(db);
      return rows[0];
    },
    /** Hands a stale attempt's key to `to`, unless its write committed meanwhile; false if it did not. */
    async takeOver(k: KeyOfCaller & { from: string; to: string; staleAfterMs: number }): Promise<boolean> {
      const result = await sql`
        UPDATE idempotency_keys SET attempt = ${k.to}, started_at = now()
        WHERE principal = ${k.principal} AND key = ${k.key} AND attempt = ${k.from} AND state = 'in_progress' AND NOT committed
          AND started_at < now() - make_interval(secs => ${seconds(k.staleAfterMs)})`.execute(db);
      return result.numAffectedRows === 1n;
    },
    /** In the write's own transaction; false when `attempt` no longer holds the key (a retry took it over). */
    async markCommitted<DB>(trx: Transaction<DB>, k: KeyOfCaller & { attempt: string }): Promise<boolean> {
      const result = await sql`
        UPDATE idempotency_keys SET committed = true
        WHERE principal = ${k.principal} AND key = ${k.key} AND attempt = ${k.attempt} AND state = 'in_progress'`.execute(trx);
      return result.numAffectedRows === 1n;
    },
    /** Stores the response (`body` null: not kept) of the attempt still holding the key. */
    async complete(k: KeyOfCaller & { attempt: string; status: number; type: string | null; body: string | null }): Promise<void> {
      await sql`
        UPDATE idempotency_keys
        SET state = 'completed', response_status = ${k.status}, response_type = ${k.type}, response_body = ${k.body},
            response_kept = ${k.body !== null}, completed_at = now()
        WHERE principal = ${k.principal} AND key = ${k.key} AND attempt = ${k.attempt} AND state = 'in_progress'`.execute(db);
    },
    /**
     * Frees the key after a failure (5xx) so a retry proceeds. When the write committed after all,
     * the key is kept and marked abandoned: a retry learns the write committed and its response was lost.
     */
    async release(k: KeyOfCaller & { attempt: string }): Promise<void> {
      await sql`
        WITH freed AS (
          DELETE FROM idempotency_keys
          WHERE principal = ${k.principal} AND key = ${k.key} AND attempt = ${k.attempt} AND state = 'in_progress' AND NOT committed
        )
        UPDATE idempotency_keys SET started_at = '-infinity'
        WHERE principal = ${k.principal} AND key = ${k.key} AND attempt = ${k.attempt} AND state = 'in_progress' AND committed`.execute(db);
    },
  };
}

export type IdempotencyKeys = ReturnType<typeof idempotencyKeys>;

// Keys are kept for their retention only; a scheduled job (or the hourly timer) calls this.
export async function pruneIdempotencyKeys(db: Kysely<unknown>, options: { batchSize?: number } = {}): Promise<number> {
  const batchSize = options.batchSize ?? 5_000;
  let total = 0;
  for (;;) {
    const result = await sql`
      DELETE FROM idempotency_keys WHERE (principal, key) IN (
        SELECT principal, key FROM idempotency_keys WHERE expires_at <= now() LIMIT ${batchSize})`.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

/** The `idempotency.prune` job of every service that takes Idempotency-Keys: expired keys go. */
export function pruneIdempotencyKeysJob(db: Kysely<unknown>): () => Promise<{ pruned: number }> {
  return async () => ({ pruned: await pruneIdempotencyKeys(db) });
}
