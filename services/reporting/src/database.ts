import type { ColumnType } from 'kysely';

export interface SourceTable {
  service: string;
  database: string;
  publication: string;
  tables: string[];
  updated_at: ColumnType<Date, never, Date>;
}

/** The reporting schema as Kysely sees it. */
export interface ReportingDatabase {
  sources: SourceTable;
}
