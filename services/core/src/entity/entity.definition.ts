import type { TProperties } from 'typebox';

/**
 * An entity of core with the common shape: a uuid id, business columns, version, audit columns
 * and (soft or hard) delete. The repository, service and routes of `entity/` serve any entity
 * described this way; orders, with their status machine, have their own module.
 */
export interface CoreEntity {
  /** Singular name for events (`resource.created`) and problems. */
  readonly name: string;
  readonly table: string;
  /** How messages name one row, e.g. `Resource`. */
  readonly title: string;
  /** Base path; a `:<column>` in it scopes the entity under a parent (`/api/v1/resources/:resource_id/addresses`). */
  readonly path: string;
  /** Business columns in DTO order, as the API shows them. */
  readonly columns: TProperties;
  /** Columns a create may leave out: the table has a default for them. */
  readonly optionalOnCreate: readonly string[];
  /** Columns set on create only. */
  readonly immutable: readonly string[];
  /** Columns a list can be filtered by, with equality. */
  readonly filters: readonly string[];
  /** List order (then id). */
  readonly orderBy: readonly { readonly column: string; readonly direction: 'asc' | 'desc' }[];
  /** A column whose value is unique among all rows, deleted ones included; a clash is a 409. */
  readonly unique?: string;
  /**
   * Codes and ids owned elsewhere, checked through the reference validator. `within`: the
   * referenced lookup row's column must hold this row's value of the same column (an address's
   * district must lie in the address's region).
   */
  readonly references: readonly { readonly column: string; readonly ref: string; readonly within?: { readonly lookup: string; readonly column: string } }[];
  /** Ids of live rows of this service; `sameAs`: the parent row must have this row's value in that column. */
  readonly parents: readonly { readonly column: string; readonly entity: CoreEntity; readonly sameAs?: string }[];
  /** Publishes `<name>.created|updated|deleted` with its DTO. */
  readonly events: boolean;
  /** soft: `deleted_at` is set and the row kept; hard: the row is deleted. */
  readonly deletion: 'soft' | 'hard';
  /** What deleting a parent does to live rows of this entity: refuse (409) or delete them too. */
  readonly onParentDelete: 'restrict' | 'cascade';
}

type Column<C> = keyof C & string;

/** Declares an entity; the column names it mentions are checked against its columns. */
export function defineCoreEntity<const C extends TProperties>(entity: {
  readonly name: string;
  readonly table: string;
  readonly title: string;
  readonly path: string;
  readonly columns: C;
  readonly optionalOnCreate?: readonly Column<C>[];
  readonly immutable?: readonly Column<C>[];
  readonly filters?: readonly Column<C>[];
  readonly orderBy?: readonly { readonly column: Column<C> | 'created_at'; readonly direction: 'asc' | 'desc' }[];
  readonly unique?: Column<C>;
  readonly references?: readonly { readonly column: Column<C>; readonly ref: string; readonly within?: { readonly lookup: string; readonly column: Column<C> } }[];
  readonly parents?: readonly { readonly column: Column<C>; readonly entity: CoreEntity; readonly sameAs?: Column<C> }[];
  readonly events?: boolean;
  readonly deletion: 'soft' | 'hard';
  readonly onParentDelete?: 'restrict' | 'cascade';
}): CoreEntity {
  return { optionalOnCreate: [], immutable: [], filters: [], orderBy: [], references: [], parents: [], events: false, onParentDelete: 'restrict', ...entity };
}

/** A row as the repository reads it; business columns by name. */
export interface EntityRow {
  readonly id: string;
  readonly version: number;
  readonly created_at: Date;
  readonly updated_at: Date;
  readonly [column: string]: unknown;
}

/** What the API returns and events carry. */
export interface EntityDto {
  readonly id: string;
  readonly version: number;
  readonly created_at: string;
  readonly updated_at: string;
  readonly [column: string]: unknown;
}

export function entityDto(entity: CoreEntity, row: EntityRow): EntityDto {
  const business = Object.fromEntries(Object.keys(entity.columns).map((column) => [column, row[column]]));
  return { id: row.id, ...business, version: row.version, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() };
}

/** The scope column of a nested path (`resource_id` in `/api/v1/resources/:resource_id/addresses`). */
export function scopeOf(entity: CoreEntity): string | undefined {
  return /:(\w+)/.exec(entity.path)?.[1];
}
