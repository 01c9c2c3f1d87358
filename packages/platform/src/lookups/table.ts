import { sql, type Kysely } from 'kysely';

/** The shape of one lookup table, frozen in the consumer's migration. */
export interface LookupTableSpec {
  /** e.g. `labels_lookup`; must match the registry's declaration. */
  readonly table: string;
  /** The natural key column and its SQL type, e.g. `['code', 'varchar(10)']`. */
  readonly key: readonly [name: string, type: string];
  /** Copied columns and their SQL types, e.g. `{ label: 'varchar(50) NOT NULL' }`. */
  readonly columns: Readonly<Record<string, string>>;
  readonly comment?: string;
}

/**
 * Creates a lookup table (version 1) in the current schema: the key, the copied columns, and
 * the sync bookkeeping every lookup has (`master_id`, `source_version`, `synced_at`).
 * Call it from a consumer's migration, once per lookup the registry declares.
 *
 * @example
 * await createLookupTableV1(db, { table: 'labels_lookup', key: ['code', 'varchar(10)'], columns: { label: 'varchar(50) NOT NULL' } });
 */
export async function createLookupTableV1(db: Kysely<unknown>, spec: LookupTableSpec): Promise<void> {
  const columns = Object.entries(spec.columns).map(([name, type]) => sql`${sql.id(name)} ${sql.raw(type)}`);
  await sql`
    CREATE TABLE ${sql.id(spec.table)} (
      ${sql.id(spec.key[0])} ${sql.raw(spec.key[1])} PRIMARY KEY,
      ${sql.join(columns)},
      master_id      uuid,
      source_version bigint NOT NULL,
      synced_at      timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  const comment = spec.comment ?? 'Read-only copy kept in sync by the platform; never write it by hand';
  await sql`COMMENT ON TABLE ${sql.id(spec.table)} IS ${sql.lit(comment)}`.execute(db);
}

export async function dropLookupTableV1(db: Kysely<unknown>, table: string): Promise<void> {
  await sql`DROP TABLE ${sql.id(table)}`.execute(db);
}

/**
 * Creates what every lookup shares (version 1): tombstones of deleted keys, so a late or replayed
 * event cannot bring a deleted row back, and the state of each lookup's reconciliation.
 */
export async function createLookupBookkeepingV1(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE lookup_tombstones (
      lookup     text NOT NULL,
      key        text NOT NULL,
      version    bigint NOT NULL,
      deleted_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (lookup, key)
    )`.execute(db);
  await sql`
    CREATE TABLE lookup_reconciliations (
      lookup      text PRIMARY KEY,
      finished_at timestamptz NOT NULL,
      master_rows integer NOT NULL,
      missing     integer NOT NULL,
      stale       integer NOT NULL,
      extra       integer NOT NULL,
      repaired    boolean NOT NULL
    )`.execute(db);
}

export async function dropLookupBookkeepingV1(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE lookup_reconciliations`.execute(db);
  await sql`DROP TABLE lookup_tombstones`.execute(db);
}
