export { createLookupBookkeepingV1, createLookupTableV1, dropLookupBookkeepingV1, dropLookupTableV1, type LookupTableSpec } from './table.ts';
export { lookupProjection, lookupWriter, upsertOf, type LookupChange, type LookupWriter, type MasterRow } from './projection.ts';
export { httpExportReader, reconcileLookup, type DriftReport, type ExportReader } from './reconcile.ts';
export { reconcileLookupsJob, startLookupSync, type LookupSync, type LookupSyncOptions } from './sync.ts';
export { registerLookupRoutes } from './routes.ts';
export { alignLookupTables, declaredLookupColumns, lookupTableMatches, type LookupAlignment } from './align.ts';
