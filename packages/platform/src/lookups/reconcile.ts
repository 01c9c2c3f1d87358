import { sql, type Kysely } from 'kysely';
import { lookupSourceKey, type LookupDefinition } from '@archipelago/registry';
import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import { internalFetch } from '../internal-auth/fetch.ts';
import { lookupWriter, upsertOf, type MasterRow } from './projection.ts';

/** How far a lookup table is from its master, found by comparing it with the master's export. */
export interface DriftReport {
  readonly lookup: string;
  readonly masterRows: number;
  /** Keys the master has and the copy lacks. */
  readonly missing: readonly string[];
  /** Keys whose copy is older than the master, or differs from it at the same version. */
  readonly stale: readonly string[];
  /** Keys the copy has and the master does not (deleted there). */
  readonly extra: readonly string[];
  /** Whether the differences were repaired (reconcile) or only reported (drift). */
  readonly repaired: boolean;
  readonly finishedAt: string;
}

/** Reads a producer's paged export of one entity: `GET /internal/v1/export/<entity>`. */
export type ExportReader = (lookup: LookupDefinition) => AsyncIterable<MasterRow[]>;

export function httpExportReader(baseUrlOf: (service: string) => string, credentials: ServiceCredentials, pageSize = 500): ExportReader {
  return async function* read(lookup) {
    let after: string | null = null;
    do {
      const url = new URL(`/internal/v1/export/${lookup.entity}`, baseUrlOf(lookup.from));
      url.searchParams.set('limit', String(pageSize));
      if (after !== null) url.searchParams.set('after', after);
      const response = await internalFetch(credentials, lookup.from, url, { signal: AbortSignal.timeout(30_000) });
      if (!response.ok) throw new Error(`export of ${lookup.entity} from ${lookup.from} answered ${response.status}`);
      const page = (await response.json()) as { items: MasterRow[]; next: string | null };
      yield page.items;
      after = page.next;
    } while (after !== null);
  };
}

// Copies and master rows carry scalars (text, numbers, booleans); compare them as JSON values.
const sameValue = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Compares a lookup table with its master's export and, with `repair`, makes it equal in one
 * transaction. Writes stay version-guarded, and a row synced after the comparison started is
 * never removed, so reconciling while events flow cannot undo newer changes.
 */
export async function reconcileLookup(
  db: Kysely<unknown>,
  lookup: LookupDefinition,
  readExport: ExportReader,
  options: { repair: boolean },
): Promise<DriftReport> {
  const started = (await sql<{ now: Date }>`SELECT clock_timestamp() AS now`.execute(db)).rows[0]!.now;
  const master = new Map<string, MasterRow>();
  for await (const page of readExport(lookup)) for (const row of page) master.set(String(row[lookupSourceKey(lookup)]), row);

  const copies = await sql<Record<string, unknown> & { source_version: number; synced_at: Date }>`
    SELECT * FROM ${sql.id(lookup.table)}`.execute(db);
  const tombstones = await sql<{ key: string; version: number }>`
    SELECT key, version FROM lookup_tombstones WHERE lookup = ${lookup.table}`.execute(db);
  const deletedAt = new Map(tombstones.rows.map((row) => [row.key, row.version]));
  const copyOf = new Map(copies.rows.map((row) => [String(row[lookup.key]), row]));

  const missing: MasterRow[] = [];
  const stale: MasterRow[] = [];
  for (const [key, row] of master) {
    const copy = copyOf.get(key);
    if (!copy) {
      // A tombstone at least as new means the export was read before the deletion arrived.
      if ((deletedAt.get(key) ?? -1) < row.version) missing.push(row);
    } else if (copy.source_version < row.version || (copy.source_version === row.version && !Object.keys(lookup.columns).every((c) => sameValue(copy[c], row[c])))) {
      stale.push(row);
    }
  }
  const extra = [...copyOf.values()].filter((copy) => !master.has(String(copy[lookup.key])) && copy.synced_at < started);

  if (options.repair && missing.length + stale.length + extra.length > 0) {
    const writer = lookupWriter(lookup);
    await db.transaction().execute(async (trx) => {
      await writer.apply(trx, [...missing, ...stale].map((row) => upsertOf(lookup, row)), { repair: true });
      for (const copy of extra) {
        await sql`DELETE FROM ${sql.id(lookup.table)} WHERE ${sql.id(lookup.key)} = ${copy[lookup.key]} AND synced_at < ${started}`.execute(trx);
      }
    });
  }
  const report: DriftReport = {
    lookup: lookup.table,
    masterRows: master.size,
    missing: missing.map((row) => String(row[lookup.key])),
    stale: stale.map((row) => String(row[lookup.key])),
    extra: extra.map((copy) => String(copy[lookup.key])),
    repaired: options.repair,
    finishedAt: new Date().toISOString(),
  };
  await sql`
    INSERT INTO lookup_reconciliations (lookup, finished_at, master_rows, missing, stale, extra, repaired)
    VALUES (${report.lookup}, ${report.finishedAt}, ${report.masterRows}, ${report.missing.length}, ${report.stale.length}, ${report.extra.length}, ${report.repaired})
    ON CONFLICT (lookup) DO UPDATE SET finished_at = excluded.finished_at, master_rows = excluded.master_rows, missing = excluded.missing,
      stale = excluded.stale, extra = excluded.extra, repaired = excluded.repaired`.execute(db);
  return report;
}
