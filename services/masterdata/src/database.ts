import type { LabelTable } from './labels/label.table.ts';

/** The masterdata schema as Kysely sees it. */
export interface MasterdataDatabase {
  labels: LabelTable;
}
