import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { CoreDatabase } from '../database.ts';

// Core's three report queries, plain SQL joins of core's tables and its lookup tables
// (docs/architecture.md#lookup-tables); only their literal values are parameters. They join core's own tables with the lookup tables copied from masterdata. Each
// runs as a subquery of one paging wrapper, in a stable order (the queries themselves have none).

/** One page of a report. */
export interface Page {
  readonly limit: number;
  readonly offset: number;
}

async function paged<Row>(db: Kysely<CoreDatabase>, query: RawBuilder<unknown>, orderBy: RawBuilder<unknown>, page: Page): Promise<{ items: Row[]; total: number }> {
  const { rows } = await sql<Row & { report_total: string }>`
    SELECT report.*, count(*) OVER () AS report_total FROM (${query}) AS report
    ORDER BY ${orderBy} LIMIT ${page.limit} OFFSET ${page.offset}`.execute(db);
  // Past the last row the window has nothing to count: ask for the total alone.
  const total = rows[0] ? Number(rows[0].report_total) : Number((await sql<{ n: string }>`SELECT count(*) AS n FROM (${query}) AS report`.execute(db)).rows[0]?.n ?? 0);
  return { items: rows.map(({ report_total: _total, ...row }) => row as unknown as Row), total };
}

export interface ResourceLabelRow {
  reference_number: string;
  first_name: string;
  last_name: string;
  label: string | null;
  abbreviation: string | null;
}

export interface ResourceAddressRow {
  reference_number: string;
  first_name: string;
  address_line1: string | null;
  region_name: string | null;
}

export interface ResourceEntryRow {
  engagement_id: string | null;
  entry_date: Date;
  classification_code: string | null;
  description: string | null;
}

/** The only code that runs the report SQL. */
export function reportQueries(db: Kysely<CoreDatabase>) {
  return {
    /** Resource with label: `resources JOIN labels_lookup`, a join only a local copy makes possible. */
    async resourceWithLabel(referenceNumber: string, page: Page): Promise<{ items: ResourceLabelRow[]; total: number }> {
      return paged(db, sql`
        SELECT
          r.reference_number,
          r.first_name,
          r.last_name,
          l.label,        -- From lookup table
          l.abbreviation  -- From lookup table
        FROM resources r
        LEFT JOIN labels_lookup l ON r.label_code = l.code
        WHERE r.reference_number = ${referenceNumber}`, sql`reference_number`, page);
    },
    /** Resource addresses with region names (regions lookup). */
    async resourceAddressesWithRegion(page: Page): Promise<{ items: ResourceAddressRow[]; total: number }> {
      return paged(db, sql`
        SELECT r.reference_number, r.first_name, a.address_line1, rg.name AS region_name
        FROM resources r
        LEFT JOIN resource_addresses a ON r.id = a.resource_id
        LEFT JOIN regions_lookup rg ON a.region_code = rg.code`, sql`reference_number, address_line1, region_name`, page);
    },
    /** Entries with classification code descriptions (classification codes lookup). */
    async entriesWithClassification(resourceId: string, page: Page): Promise<{ items: ResourceEntryRow[]; total: number }> {
      return paged(db, sql`
        SELECT e.engagement_id, e.entry_date, c.code AS classification_code, c.description
        FROM entries e
        LEFT JOIN classification_codes_lookup c ON e.classification_code = c.code
        WHERE e.resource_id = ${resourceId}`, sql`entry_date, classification_code, engagement_id`, page);
    },
  };
}

export type ReportQueries = ReturnType<typeof reportQueries>;
