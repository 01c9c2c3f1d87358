import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventEnvelope } from '../events/envelope.ts';

/** The consumer's tables of the conformance suite: what it applied, and a version-guarded copy. */
export async function createConformanceTables(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS conformance_copy (code text PRIMARY KEY, label text NOT NULL, version bigint NOT NULL)`.execute(db);
  await sql`CREATE TABLE IF NOT EXISTS conformance_applied (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, consumer text NOT NULL, event_id uuid NOT NULL,
    aggregate text NOT NULL, version bigint NOT NULL)`.execute(db);
}

/**
 * The conformance suite's handler: logs each application (so duplicates show) and keeps a
 * version-guarded copy. `fail` makes chosen events throw; `loseConnection` makes them end their
 * own database connection (pg_terminate_backend) instead; `delayMs` slows each event down.
 */
export function conformanceHandler(
  consumer: string,
  options: { fail?: (event: EventEnvelope) => boolean; loseConnection?: (event: EventEnvelope) => boolean; delayMs?: number } = {},
) {
  return async (trx: Transaction<unknown>, events: readonly EventEnvelope[]): Promise<void> => {
    for (const event of events) {
      if (options.fail?.(event)) throw new Error(`cannot apply ${event.aggregate.id}`);
      if (options.loseConnection?.(event)) await sql`SELECT pg_terminate_backend(pg_backend_pid())`.execute(trx);
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      const payload = event.payload as { code: string; label: string };
      await sql`INSERT INTO conformance_applied (consumer, event_id, aggregate, version)
                VALUES (${consumer}, ${event.id}, ${event.aggregate.id}, ${event.aggregate.version})`.execute(trx);
      await sql`INSERT INTO conformance_copy (code, label, version) VALUES (${payload.code}, ${payload.label}, ${event.aggregate.version})
                ON CONFLICT (code) DO UPDATE SET label = excluded.label, version = excluded.version
                WHERE conformance_copy.version < excluded.version`.execute(trx);
    }
  };
}
