import { sql, type Kysely } from 'kysely';
import type { CoreDatabase } from '../database.ts';

// Seed 000's three report queries, as the seed wrote them; only their literal values are
// parameters. They join core's own tables with the lookup tables copied from masterdata.

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
    /** Resource with label (seed 000, "SQL Query (Now Possible)"). */
    async resourceWithLabel(referenceNumber: string): Promise<ResourceLabelRow[]> {
      const { rows } = await sql<ResourceLabelRow>`
        SELECT
          r.reference_number,
          r.first_name,
          r.last_name,
          l.label,        -- From lookup table
          l.abbreviation  -- From lookup table
        FROM resources r
        LEFT JOIN labels_lookup l ON r.label_code = l.code
        WHERE r.reference_number = ${referenceNumber};`.execute(db);
      return rows;
    },
    /** Resource addresses with region names (seed 000, regions lookup). */
    async resourceAddressesWithRegion(): Promise<ResourceAddressRow[]> {
      const { rows } = await sql<ResourceAddressRow>`
        SELECT r.reference_number, r.first_name, a.address_line1, rg.name AS region_name
        FROM resources r
        LEFT JOIN resource_addresses a ON r.id = a.resource_id
        LEFT JOIN regions_lookup rg ON a.region_code = rg.code;`.execute(db);
      return rows;
    },
    /** Entries with classification code descriptions (seed 000, classification codes lookup). */
    async entriesWithClassification(resourceId: string): Promise<ResourceEntryRow[]> {
      const { rows } = await sql<ResourceEntryRow>`
        SELECT e.engagement_id, e.entry_date, c.code AS classification_code, c.description
        FROM entries e
        LEFT JOIN classification_codes_lookup c ON e.classification_code = c.code
        WHERE e.resource_id = ${resourceId};`.execute(db);
      return rows;
    },
  };
}

export type ReportQueries = ReturnType<typeof reportQueries>;
