import Type from 'typebox';
import { defineCrudTable } from '@archipelago/platform/crud';

// Codes are upper case: letters, digits and a few separators (US-CA, E11.9, CARDIO).
const codeOf = (maxLength: number, description: string) =>
  Type.String({ pattern: `^[A-Z0-9][A-Z0-9._-]{0,${maxLength - 1}}$`, description });
const text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const nullable = (maxLength: number) => Type.Union([text(maxLength), Type.Null()]);

// Every reference table has the same shape: a unique code that names the row in URLs and events,
// `is_active`, soft deletion (a create with a deleted row's code revives it), an event per change,
// and a DTO without timestamps.
const reference = { key: 'code', unique: 'code', revive: true, events: true, deletion: 'soft', timestamps: false } as const;
const active = { param: 'active', column: 'is_active' } as const;

export const labels = defineCrudTable({
  ...reference,
  name: 'label',
  table: 'labels',
  title: 'Label',
  path: '/api/v1/labels',
  columns: {
    code: Type.String({ pattern: '^[A-Z0-9_]{1,10}$', description: 'Upper-case label code, e.g. DR' }),
    label: text(50),
    display_name: text(50),
    abbreviation: nullable(50),
    display_order: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    is_active: Type.Boolean(),
  },
  optionalOnCreate: ['abbreviation', 'display_order', 'is_active'],
  orderBy: [{ column: 'display_order', direction: 'asc' }],
  filters: [active],
});

export const regions = defineCrudTable({
  ...reference,
  name: 'region',
  table: 'regions',
  title: 'Region',
  path: '/api/v1/regions',
  columns: { code: codeOf(10, 'Region code, e.g. US-CA'), name: text(100), zone: text(10), is_active: Type.Boolean() },
  optionalOnCreate: ['is_active'],
  filters: [active, 'zone'],
});

export const districts = defineCrudTable({
  ...reference,
  name: 'district',
  table: 'districts',
  title: 'District',
  path: '/api/v1/districts',
  columns: { code: codeOf(20, 'District code, e.g. US-CA-LA'), name: text(100), region_code: regions.columns.code, is_active: Type.Boolean() },
  optionalOnCreate: ['is_active'],
  filters: [active, 'region_code'],
});

export const subDistricts = defineCrudTable({
  ...reference,
  name: 'sub-district',
  table: 'sub_districts',
  title: 'Sub-district',
  path: '/api/v1/sub-districts',
  columns: { code: codeOf(20, 'Sub-district code, e.g. US-CA-LA-PAS'), name: text(100), district_code: districts.columns.code, is_active: Type.Boolean() },
  optionalOnCreate: ['is_active'],
  filters: [active, 'district_code'],
});

export const departments = defineCrudTable({
  ...reference,
  name: 'department',
  table: 'departments',
  title: 'Department',
  path: '/api/v1/departments',
  columns: { code: codeOf(20, 'Department code, e.g. CARDIO'), name: text(100), is_active: Type.Boolean() },
  optionalOnCreate: ['is_active'],
  filters: [active],
});

export const classificationCodes = defineCrudTable({
  ...reference,
  name: 'classification-code',
  table: 'classification_codes',
  title: 'Classification code',
  path: '/api/v1/classification-codes',
  columns: { code: codeOf(10, 'Classification (ICD-10) code, e.g. E11.9'), description: Type.String({ minLength: 1, maxLength: 2000 }), category: text(50), is_active: Type.Boolean() },
  optionalOnCreate: ['is_active'],
  filters: [active, 'category'],
});

/** A code column that must name a live row of another table: a district's region. */
export const parents = [
  { table: districts, column: 'region_code', parent: regions },
  { table: subDistricts, column: 'district_code', parent: districts },
] as const;

/** Every master-data table this service owns, parents before children. */
export const referenceTables = [labels, regions, districts, subDistricts, departments, classificationCodes];
