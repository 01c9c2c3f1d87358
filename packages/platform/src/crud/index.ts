export { defineCrudTable, crudDto, type CrudTable, type CrudTableOptions, type CrudTableType, type CrudRow, type CrudDto, type CrudSchemas, type CrudAuditColumns } from './table.ts';
export { crudRepository, type CrudRepository, type CrudPage } from './repository.ts';
export { crudService, type CrudService, type CrudHooks, type CrudWrite, type CrudGuard, type CrudWriteOptions } from './service.ts';
export { crudRoutes, crudExport, registerExport, type CrudAccess, type ExportOptions } from './routes.ts';
