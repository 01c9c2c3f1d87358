import type { TProperties, TString } from 'typebox';

/**
 * One master-data entity of the common shape: a unique `code`, business columns, `is_active`,
 * and the audit columns (id, version, created/updated at/by, soft delete). The repository,
 * service and routes of `reference/` serve any entity described this way.
 */
export interface ReferenceEntity {
  /** Event and export name, e.g. `sub-district` (events `sub-district.created`, …). */
  readonly name: string;
  /** Table name, e.g. `sub_districts`. */
  readonly table: string;
  /** How messages name one row, e.g. `Sub-district`. */
  readonly title: string;
  /** Base path of its REST API, e.g. `/api/v1/sub-districts`. */
  readonly path: string;
  /** Schema of a code (pattern and length of the column). */
  readonly code: TString;
  /** Business columns other than `code` and `is_active`, in DTO order, as the API shows them. */
  readonly columns: TProperties;
  /** Columns a create may leave out: the table has a default for them. */
  readonly optionalOnCreate: readonly string[];
  /** List order before `code`. */
  readonly orderBy: readonly string[];
  /** Columns a list can be filtered by, with equality (`?zone=West`). */
  readonly filters: readonly string[];
  /** A column holding the code of a live row of another entity (a district's `region_code`). */
  readonly parent?: { readonly column: string; readonly entity: ReferenceEntity };
}

/** Declares an entity; the column names it mentions are checked against its columns. */
export function defineReferenceEntity<const C extends TProperties>(entity: {
  readonly name: string;
  readonly table: string;
  readonly title: string;
  readonly path: string;
  readonly code: TString;
  readonly columns: C;
  readonly optionalOnCreate?: readonly (keyof C & string)[];
  readonly orderBy?: readonly (keyof C & string)[];
  readonly filters?: readonly (keyof C & string)[];
  readonly parent?: { readonly column: keyof C & string; readonly entity: ReferenceEntity };
}): ReferenceEntity {
  return { optionalOnCreate: [], orderBy: [], filters: [], ...entity };
}

/** A row as the table holds it; business columns by name. */
export interface ReferenceRow {
  readonly id: string;
  readonly code: string;
  readonly is_active: boolean;
  readonly version: number;
  readonly created_at: Date;
  readonly updated_at: Date;
  readonly created_by: string | null;
  readonly updated_by: string | null;
  readonly deleted_at: Date | null;
  readonly [column: string]: unknown;
}

/** What the API returns and what events carry: id, code, business columns, is_active, version. */
export interface ReferenceDto {
  readonly id: string;
  readonly code: string;
  readonly is_active: boolean;
  readonly version: number;
  readonly [column: string]: unknown;
}

export function referenceDto(entity: ReferenceEntity, row: ReferenceRow): ReferenceDto {
  const business = Object.fromEntries(Object.keys(entity.columns).map((column) => [column, row[column]]));
  return { id: row.id, code: row.code, ...business, is_active: row.is_active, version: row.version };
}
