import type { CrudTableType } from '@archipelago/platform/crud';
import type { classificationCodes, departments, districts, labels, regions, subDistricts } from './catalog.ts';

/** The masterdata schema as Kysely sees it, derived from the table declarations in `catalog.ts`. */
export interface MasterdataDatabase {
  labels: CrudTableType<typeof labels>;
  regions: CrudTableType<typeof regions>;
  districts: CrudTableType<typeof districts>;
  sub_districts: CrudTableType<typeof subDistricts>;
  departments: CrudTableType<typeof departments>;
  classification_codes: CrudTableType<typeof classificationCodes>;
}
