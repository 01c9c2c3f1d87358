import Type from 'typebox';
import { defineReferenceEntity } from './reference/reference.entity.ts';

// Codes are upper case: letters, digits and a few separators (US-CA, E11.9, CARDIO).
const codeOf = (maxLength: number, description: string) =>
  Type.String({ pattern: `^[A-Z0-9][A-Z0-9._-]{0,${maxLength - 1}}$`, description });
const text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const nullable = (maxLength: number) => Type.Union([text(maxLength), Type.Null()]);

export const labels = defineReferenceEntity({
  name: 'label',
  table: 'labels',
  title: 'Label',
  path: '/api/v1/labels',
  code: Type.String({ pattern: '^[A-Z0-9_]{1,10}$', description: 'Upper-case label code, e.g. DR' }),
  columns: { label: text(50), display_name: text(50), abbreviation: nullable(50), display_order: Type.Integer({ minimum: 0, maximum: 1_000_000 }) },
  optionalOnCreate: ['abbreviation', 'display_order'],
  orderBy: ['display_order'],
});

export const regions = defineReferenceEntity({
  name: 'region',
  table: 'regions',
  title: 'Region',
  path: '/api/v1/regions',
  code: codeOf(10, 'Region code, e.g. US-CA'),
  columns: { name: text(100), zone: text(10) },
  filters: ['zone'],
});

export const districts = defineReferenceEntity({
  name: 'district',
  table: 'districts',
  title: 'District',
  path: '/api/v1/districts',
  code: codeOf(20, 'District code, e.g. US-CA-LA'),
  columns: { name: text(100), region_code: regions.code },
  filters: ['region_code'],
  parent: { column: 'region_code', entity: regions },
});

export const subDistricts = defineReferenceEntity({
  name: 'sub-district',
  table: 'sub_districts',
  title: 'Sub-district',
  path: '/api/v1/sub-districts',
  code: codeOf(20, 'Sub-district code, e.g. US-CA-LA-PAS'),
  columns: { name: text(100), district_code: districts.code },
  filters: ['district_code'],
  parent: { column: 'district_code', entity: districts },
});

export const departments = defineReferenceEntity({
  name: 'department',
  table: 'departments',
  title: 'Department',
  path: '/api/v1/departments',
  code: codeOf(20, 'Department code, e.g. CARDIO'),
  columns: { name: text(100) },
});

export const classificationCodes = defineReferenceEntity({
  name: 'classification-code',
  table: 'classification_codes',
  title: 'Classification code',
  path: '/api/v1/classification-codes',
  code: codeOf(10, 'Classification (ICD-10) code, e.g. E11.9'),
  columns: { description: Type.String({ minLength: 1, maxLength: 2000 }), category: text(50) },
  filters: ['category'],
});

/** Every master-data entity this service owns, parents before children. */
export const referenceEntities = [labels, regions, districts, subDistricts, departments, classificationCodes];
