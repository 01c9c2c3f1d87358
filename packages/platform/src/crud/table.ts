import Type, { type Static, type TProperties, type TSchema } from 'typebox';
import type { ColumnType, Generated } from 'kysely';

type Column<C> = keyof C & string;
type Defaulted<T> = ColumnType<T, T | undefined, T>;
type Direction = 'asc' | 'desc';

/** What a table declaration says; the mechanics of `crud/` follow from it. */
export interface CrudTableOptions<C extends TProperties, O extends Column<C>, D extends 'soft' | 'hard'> {
  /** Singular name for events (`resource.created`), the export (`/internal/v1/export/<name>`) and the aggregate type. */
  readonly name: string;
  readonly table: string;
  /** How messages name one row, e.g. `Resource`. */
  readonly title: string;
  /** Base path; a `:<column>` in it scopes the table under a parent (`/api/v1/resources/:resource_id/addresses`). */
  readonly path: string;
  /** Business columns in DTO order, as the API shows them. */
  readonly columns: C;
  /** The column that names a row in URLs and events (`code`); `id` when absent. It never changes. */
  readonly key?: Column<C>;
  /** Columns a create may leave out: the table has a default for them. */
  readonly optionalOnCreate?: readonly O[];
  /** Columns set on create only. */
  readonly immutable?: readonly Column<C>[];
  /** Equality filters of a list: a column (`?zone=`), or a query parameter naming one (`?active=` for `is_active`). */
  readonly filters?: readonly (Column<C> | { readonly param: string; readonly column: Column<C> })[];
  /** List order before the key. */
  readonly orderBy?: readonly { readonly column: Column<C> | 'created_at'; readonly direction: Direction }[];
  /** A column unique among all rows, deleted ones included; a clash with a live row is a 409. */
  readonly unique?: Column<C>;
  /** With soft deletion and `unique`: creating a row whose unique value a deleted row holds brings that row back (its version keeps counting). */
  readonly revive?: boolean;
  /** Publishes `<name>.created|updated|deleted` with the DTO, in the write's transaction. */
  readonly events?: boolean;
  /** soft: `deleted_at` is set and the row kept; hard: the row is deleted. */
  readonly deletion: D;
  /** Whether the DTO shows `created_at` and `updated_at` (default true). */
  readonly timestamps?: boolean;
}

/** A declared table: its options with defaults, and the schemas derived from its columns. */
export interface CrudTable<C extends TProperties = TProperties, O extends Column<C> = Column<C>, D extends 'soft' | 'hard' = 'soft' | 'hard'> {
  readonly name: string;
  readonly table: string;
  readonly title: string;
  readonly path: string;
  readonly columns: C;
  readonly key: string;
  readonly optionalOnCreate: readonly O[];
  readonly immutable: readonly string[];
  readonly filters: readonly { readonly param: string; readonly column: string }[];
  readonly orderBy: readonly { readonly column: string; readonly direction: Direction }[];
  readonly unique?: string;
  readonly revive: boolean;
  readonly events: boolean;
  readonly deletion: D;
  readonly timestamps: boolean;
  /** The column a nested path scopes rows by (`resource_id`), if any. */
  readonly scope?: string;
  readonly schemas: CrudSchemas;
}

/** Request and response schemas of one table, derived from its columns. */
export interface CrudSchemas {
  /** A row as the API returns it and events carry it. */
  readonly row: TSchema;
  readonly create: TSchema;
  readonly patch: TSchema;
  readonly list: TSchema;
  /** Path parameters of the collection (the scope, if any). */
  readonly scopeParams: TSchema;
  /** Path parameters of one row (scope and key). */
  readonly rowParams: TSchema;
}

/** The columns every CRUD table has besides its business columns. */
export interface CrudAuditColumns {
  id: Generated<string>;
  version: Defaulted<number>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
  created_by: string | null;
  updated_by: string | null;
}

/**
 * The Kysely table type of a declared table, for the service's `Database` interface.
 *
 * @example
 * export interface CoreDatabase { resources: CrudTableType<typeof resources>; orders: OrderTable }
 */
export type CrudTableType<T> =
  T extends CrudTable<infer C, infer O, infer D>
    ? CrudAuditColumns & (D extends 'soft' ? { deleted_at: Date | null } : unknown) & { [K in keyof C]: K extends O ? Defaulted<Static<C[K]>> : Static<C[K]> }
    : never;

/** A row as the repository reads it: business columns as the API shows them (timestamps as ISO text). */
export type CrudRow<T> = T extends CrudTable<infer C>
  ? { readonly id: string; readonly version: number; readonly created_at: Date; readonly updated_at: Date } & { readonly [K in keyof C]: Static<C[K]> }
  : never;

/** A row as the API returns it and its events carry it. */
export type CrudDto<T> = T extends CrudTable<infer C>
  ? { readonly id: string; readonly version: number; readonly created_at?: string; readonly updated_at?: string } & { readonly [K in keyof C]: Static<C[K]> }
  : never;

const Id = Type.String({ format: 'uuid' });

function schemasOf(table: Omit<CrudTable, 'schemas'>): CrudSchemas {
  const { columns, scope, key } = table;
  const body = Object.entries(columns).filter(([column]) => column !== scope);
  const optional = new Set<string>(table.optionalOnCreate);
  const fixed = new Set([...table.immutable, key]);
  const scopeParams: TProperties = scope ? { [scope]: Id } : {};
  const timestamps: TProperties = table.timestamps ? { created_at: Type.String({ format: 'date-time' }), updated_at: Type.String({ format: 'date-time' }) } : {};
  return {
    row: Type.Object({ id: Id, ...columns, version: Type.Integer(), ...timestamps }),
    create: Type.Object(Object.fromEntries(body.map(([column, schema]) => [column, optional.has(column) ? Type.Optional(schema) : schema])), { additionalProperties: false }),
    patch: Type.Object(Object.fromEntries(body.filter(([column]) => !fixed.has(column)).map(([column, schema]) => [column, Type.Optional(schema)])), {
      additionalProperties: false,
      minProperties: 1,
    }),
    list: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
      offset: Type.Integer({ minimum: 0, default: 0 }),
      ...Object.fromEntries(table.filters.filter((f) => f.column !== scope).map((f) => [f.param, Type.Optional(columns[f.column] as TSchema)])),
    }),
    scopeParams: Type.Object(scopeParams),
    rowParams: Type.Object({ ...scopeParams, [key]: key === 'id' ? Id : (columns[key] as TSchema) }),
  };
}

/**
 * Declares a table once: the column names it mentions are checked against its columns, and it
 * yields the request/response schemas (`table.schemas`) and, through `CrudTableType`, its Kysely type.
 *
 * @example
 * export const regions = defineCrudTable({
 *   name: 'region', table: 'regions', title: 'Region', path: '/api/v1/regions',
 *   columns: { code: Type.String(), name: Type.String() }, key: 'code', deletion: 'soft',
 * });
 */
export function defineCrudTable<const C extends TProperties, const O extends Column<C> = never, const D extends 'soft' | 'hard' = 'soft' | 'hard'>(
  options: CrudTableOptions<C, O, D>,
): CrudTable<C, O, D> {
  const table = {
    name: options.name,
    table: options.table,
    title: options.title,
    path: options.path,
    columns: options.columns,
    key: options.key ?? 'id',
    optionalOnCreate: options.optionalOnCreate ?? [],
    immutable: options.immutable ?? [],
    filters: (options.filters ?? []).map((f) => (typeof f === 'string' ? { param: f, column: f } : f)),
    orderBy: options.orderBy ?? [],
    unique: options.unique,
    revive: options.revive ?? false,
    events: options.events ?? false,
    deletion: options.deletion,
    timestamps: options.timestamps ?? true,
    scope: /:(\w+)/.exec(options.path)?.[1],
  };
  return { ...table, schemas: schemasOf(table) };
}

/** The DTO of a row: id, business columns, version (and timestamps when the table shows them). */
export function crudDto<T extends CrudTable>(table: T, row: CrudRow<T>): CrudDto<T> {
  const values = row as unknown as Readonly<Record<string, unknown>>;
  const business = Object.fromEntries(Object.keys(table.columns).map((column) => [column, values[column]]));
  const timestamps = table.timestamps ? { created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() } : {};
  return { id: row.id, ...business, version: row.version, ...timestamps } as CrudDto<T>;
}
