import { sql, type Kysely, type Transaction } from 'kysely';
import type { LookupDefinition } from '@archipelago/registry';
import type { EventEnvelope } from '../events/envelope.ts';

/** A master row as the producer's events and export carry it: its id, version and columns. */
export interface MasterRow {
  readonly id: string;
  readonly version: number;
  readonly [column: string]: unknown;
}

type Executor = Kysely<unknown> | Transaction<unknown>;

/**
 * Writes one lookup table. Every write is guarded by the master row's version, so a late,
 * replayed or reordered event never overwrites newer data, and a deleted key leaves a tombstone
 * that keeps older events from bringing it back.
 */
export function lookupWriter(lookup: LookupDefinition) {
  const table = sql.id(lookup.table);
  const key = sql.id(lookup.key);
  const columns = lookup.columns.map((column) => sql.id(column));
  const updates = lookup.columns.map((column) => sql`${sql.id(column)} = excluded.${sql.id(column)}`);

  const valuesOf = (row: MasterRow) =>
    lookup.columns.map((column) => {
      if (!(column in row)) throw new Error(`${lookup.entity} ${String(row[lookup.key])} carries no "${column}" (declared by ${lookup.table})`);
      return sql`${row[column]}`;
    });

  return {
    /**
     * Copies a master row unless the copy is as new or newer; `repair` also overwrites a copy of
     * the same version (a row changed by hand).
     */
    async upsert(trx: Executor, row: MasterRow, options: { repair?: boolean } = {}): Promise<void> {
      const keyValue = String(row[lookup.key]);
      const tombstone = await sql<{ version: number }>`
        SELECT version FROM lookup_tombstones WHERE lookup = ${lookup.table} AND key = ${keyValue}`.execute(trx);
      const deletedAt = tombstone.rows[0]?.version;
      if (deletedAt !== undefined) {
        if (deletedAt >= row.version) return;
        await sql`DELETE FROM lookup_tombstones WHERE lookup = ${lookup.table} AND key = ${keyValue}`.execute(trx);
      }
      const newer = options.repair ? sql`${table}.source_version <= excluded.source_version` : sql`${table}.source_version < excluded.source_version`;
      await sql`
        INSERT INTO ${table} (${key}, ${sql.join(columns)}, master_id, source_version, synced_at)
        VALUES (${keyValue}, ${sql.join(valuesOf(row))}, ${row.id}, ${row.version}, now())
        ON CONFLICT (${key}) DO UPDATE SET ${sql.join(updates)}, master_id = excluded.master_id,
          source_version = excluded.source_version, synced_at = now()
        WHERE ${newer}`.execute(trx);
    },
    /** Removes the copy of a deleted master row, unless the copy is newer than the deletion. */
    async remove(trx: Executor, keyValue: string, version: number): Promise<void> {
      await sql`DELETE FROM ${table} WHERE ${key} = ${keyValue} AND source_version < ${version}`.execute(trx);
      await sql`
        INSERT INTO lookup_tombstones (lookup, key, version) VALUES (${lookup.table}, ${keyValue}, ${version})
        ON CONFLICT (lookup, key) DO UPDATE SET version = GREATEST(lookup_tombstones.version, excluded.version), deleted_at = now()`.execute(trx);
    },
  };
}

export type LookupWriter = ReturnType<typeof lookupWriter>;

/**
 * The event handler of every lookup one producer feeds: `<entity>.created|updated` upsert,
 * `<entity>.deleted` removes; events of entities nobody copies are skipped.
 */
export function lookupProjection(lookups: readonly LookupDefinition[]) {
  const byEntity = new Map(lookups.map((lookup) => [lookup.entity, { lookup, writer: lookupWriter(lookup) }]));
  return async (trx: Transaction<unknown>, event: EventEnvelope): Promise<void> => {
    const target = byEntity.get(event.aggregate.type);
    if (!target) return;
    const row = { ...(event.payload as Record<string, unknown>), version: event.aggregate.version } as MasterRow;
    if (event.type === `${event.aggregate.type}.deleted`) {
      await target.writer.remove(trx, event.aggregate.id, event.aggregate.version);
    } else {
      await target.writer.upsert(trx, row);
    }
  };
}
