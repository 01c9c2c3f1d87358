import { sql, type Kysely, type Transaction } from 'kysely';
import { lookupSourceKey, type LookupDefinition } from '@archipelago/registry';
import type { EventEnvelope } from '../events/envelope.ts';

/** A master row as the producer's events and export carry it: its id, version and columns. */
export interface MasterRow {
  readonly id: string;
  readonly version: number;
  readonly [column: string]: unknown;
}

/** What a lookup should end up holding for one key: the master row, or its deletion. */
export type LookupChange =
  | { readonly kind: 'upsert'; readonly key: string; readonly version: number; readonly row: MasterRow }
  | { readonly kind: 'remove'; readonly key: string; readonly version: number };

type Executor = Kysely<unknown> | Transaction<unknown>;

/**
 * Writes one lookup table, a batch of changes in a handful of statements. Every write is guarded
 * by the master row's version, so a late, replayed or reordered change never overwrites newer
 * data, and a deleted key leaves a tombstone that keeps older changes from bringing it back.
 */
export function lookupWriter(lookup: LookupDefinition) {
  const table = sql.id(lookup.table);
  const key = sql.id(lookup.key);
  const copied = Object.keys(lookup.columns);
  const columns = copied.map((column) => sql.id(column));
  const updates = copied.map((column) => sql`${sql.id(column)} = excluded.${sql.id(column)}`);

  const valuesOf = (change: Extract<LookupChange, { kind: 'upsert' }>) => {
    const values = copied.map((column) => {
      if (!(column in change.row)) throw new Error(`${lookup.entity} ${change.key} carries no "${column}" (declared by ${lookup.table})`);
      return sql`${change.row[column]}`;
    });
    return sql`(${change.key}, ${sql.join(values)}, ${change.row.id}, ${change.version}, now())`;
  };

  return {
    /**
     * Applies changes (any order, duplicates allowed): per key the newest wins, unless the copy
     * or its tombstone is as new. `repair` also overwrites a copy of the same version (a row
     * changed by hand).
     */
    async apply(trx: Executor, changes: readonly LookupChange[], options: { repair?: boolean } = {}): Promise<void> {
      const newest = new Map<string, LookupChange>();
      for (const change of changes) {
        const seen = newest.get(change.key);
        if (!seen || seen.version <= change.version) newest.set(change.key, change);
      }
      if (newest.size === 0) return;
      const tombstones = await sql<{ key: string; version: number }>`
        SELECT key, version FROM lookup_tombstones WHERE lookup = ${lookup.table} AND key = ANY(${[...newest.keys()]}::text[])`.execute(trx);
      const deletedAt = new Map(tombstones.rows.map((row) => [row.key, row.version]));
      const upserts = [...newest.values()].filter(
        (change): change is Extract<LookupChange, { kind: 'upsert' }> => change.kind === 'upsert' && (deletedAt.get(change.key) ?? -1) < change.version,
      );
      const removals = [...newest.values()].filter((change) => change.kind === 'remove');

      if (upserts.some((change) => deletedAt.has(change.key))) {
        const revived = upserts.filter((change) => deletedAt.has(change.key)).map((change) => change.key);
        await sql`DELETE FROM lookup_tombstones WHERE lookup = ${lookup.table} AND key = ANY(${revived}::text[])`.execute(trx);
      }
      if (upserts.length > 0) {
        const newer = options.repair ? sql`${table}.source_version <= excluded.source_version` : sql`${table}.source_version < excluded.source_version`;
        await sql`
          INSERT INTO ${table} (${key}, ${sql.join(columns)}, master_id, source_version, synced_at)
          VALUES ${sql.join(upserts.map(valuesOf))}
          ON CONFLICT (${key}) DO UPDATE SET ${sql.join(updates)}, master_id = excluded.master_id,
            source_version = excluded.source_version, synced_at = now()
          WHERE ${newer}`.execute(trx);
      }
      if (removals.length > 0) {
        const deleted = sql.join(removals.map((change) => sql`(${change.key}::text, ${change.version}::bigint)`));
        await sql`
          DELETE FROM ${table} AS copy USING (VALUES ${deleted}) AS deleted (key, version)
          WHERE copy.${key} = deleted.key AND copy.source_version < deleted.version`.execute(trx);
        await sql`
          INSERT INTO lookup_tombstones (lookup, key, version)
          SELECT ${lookup.table}, key, version FROM (VALUES ${deleted}) AS deleted (key, version)
          ON CONFLICT (lookup, key) DO UPDATE SET version = GREATEST(lookup_tombstones.version, excluded.version), deleted_at = now()`.execute(trx);
      }
    },
  };
}

export type LookupWriter = ReturnType<typeof lookupWriter>;

/** A master row as a change of its lookup copy. */
export const upsertOf = (lookup: LookupDefinition, row: MasterRow): LookupChange => ({ kind: 'upsert', key: String(row[lookupSourceKey(lookup)]), version: row.version, row });

// The key an event applies to: its aggregate id, or the mapped field of its payload (`keyFrom`).
const keyOf = (lookup: LookupDefinition, event: EventEnvelope) =>
  lookup.keyFrom === undefined ? event.aggregate.id : String((event.payload as Record<string, unknown>)[lookup.keyFrom]);

/**
 * The event handler of every lookup one producer feeds: `<entity>.created|updated` upsert,
 * `<entity>.deleted` removes; events of entities nobody copies are skipped.
 */
export function lookupProjection(lookups: readonly LookupDefinition[]) {
  const targets = new Map(lookups.map((lookup) => [lookup.entity, { lookup, writer: lookupWriter(lookup) }]));
  return async (trx: Transaction<unknown>, events: readonly EventEnvelope[]): Promise<void> => {
    const changes = new Map<string, LookupChange[]>();
    for (const event of events) {
      const target = targets.get(event.aggregate.type);
      if (!target) continue;
      const { version } = event.aggregate;
      const key = keyOf(target.lookup, event);
      const change: LookupChange = event.type === `${event.aggregate.type}.deleted`
        ? { kind: 'remove', key, version }
        : { kind: 'upsert', key, version, row: { ...(event.payload as Record<string, unknown>), version } as MasterRow };
      (changes.get(event.aggregate.type) ?? changes.set(event.aggregate.type, []).get(event.aggregate.type)!).push(change);
    }
    for (const [entity, batch] of changes) await targets.get(entity)!.writer.apply(trx, batch);
  };
}
