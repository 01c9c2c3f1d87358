import type { FastifyRequest } from 'fastify';
import Type, { type TSchema } from 'typebox';
import { AppError } from '../errors.ts';
import type { HttpServer } from '../http.ts';
import { changeOf } from '../auth/change.ts';
import { feedReaders } from '../internal-auth/guard.ts';
import type { CrudGuard, CrudService } from './service.ts';
import { crudDto, type CrudRow, type CrudTable } from './table.ts';

type Values = Readonly<Record<string, unknown>>;

/**
 * Who may see and change which rows, per request: the service's policies (department policies
 * in core). A row the user may not read should be "not found" (`notFound()`), never a 403.
 */
export interface CrudAccess {
  /** The list's filters narrowed to what the user may read; undefined: an empty page. */
  readonly listScope?: (request: FastifyRequest, where: Values) => Promise<Values | undefined>;
  readonly canRead?: (request: FastifyRequest, row: Values, notFound: () => AppError) => Promise<void>;
  readonly canCreate?: (request: FastifyRequest, values: Values) => Promise<void>;
  /** Runs on the locked row of a PATCH or DELETE. */
  readonly canChange?: (request: FastifyRequest, notFound: () => AppError) => CrudGuard;
}

/**
 * The REST API of one table under its path: paged list with filters, read, create, PATCH and
 * DELETE by key, answering problems (404, 409, 422) as the service and its hooks raise them.
 */
export function crudRoutes<T extends CrudTable>(app: HttpServer, service: CrudService<T>, access: CrudAccess = {}): void {
  const { table } = service;
  const { schemas, key } = table;
  const tags = [table.table];
  const toDto = (row: CrudRow<T>) => crudDto(table, row);
  const notFound = (value: string) => () => new AppError('NOT_FOUND', `${table.title} ${value} does not exist`);
  const rowPath = `${table.path}/:${key}`;
  const page = Type.Object({ items: Type.Array(schemas.row), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });
  const split = (params: unknown) => {
    const { [key]: value, ...scoped } = params as Record<string, string>;
    return { value: value!, scoped };
  };

  app.get(table.path, { schema: { tags, params: schemas.scopeParams, querystring: schemas.list, response: { 200: page } } }, async (request) => {
    const { limit, offset, ...query } = request.query as { limit: number; offset: number } & Values;
    const filters = { ...Object.fromEntries(table.filters.map((f) => [f.column, query[f.param]])), ...(request.params as Values) };
    const where = access.listScope ? await access.listScope(request, filters) : filters;
    if (!where) return { items: [], total: 0, limit, offset };
    const found = await service.rows.list({ limit, offset, where });
    return { items: found.items.map(toDto), total: found.total, limit, offset };
  });
  app.get(rowPath, { schema: { tags, params: schemas.rowParams, response: { 200: schemas.row } } }, async (request) => {
    const { value, scoped } = split(request.params);
    const row = (await service.rows.find(value)) as Values | undefined;
    if (!row || (table.scope !== undefined && row[table.scope] !== scoped[table.scope])) throw notFound(value)();
    await access.canRead?.(request, row, notFound(value));
    return toDto(row as CrudRow<T>);
  });
  app.post(table.path, { schema: { tags, params: schemas.scopeParams, body: schemas.create, response: { 201: schemas.row } } }, async (request, reply) => {
    const values = { ...(request.body as Values), ...(request.params as Values) };
    await access.canCreate?.(request, values);
    return reply.status(201).send(await service.create(values, changeOf(request)));
  });
  app.patch(rowPath, { schema: { tags, params: schemas.rowParams, body: schemas.patch, response: { 200: schemas.row } } }, async (request) => {
    const { value, scoped } = split(request.params);
    return service.update(value, request.body as Values, changeOf(request), { scoped, guard: access.canChange?.(request, notFound(value)) });
  });
  app.delete(rowPath, { schema: { tags, params: schemas.rowParams } }, async (request, reply) => {
    const { value, scoped } = split(request.params);
    await service.remove(value, changeOf(request), { scoped, guard: access.canChange?.(request, notFound(value)) });
    return reply.status(204).send();
  });
}

/** Options of `registerExport`. */
export interface ExportOptions<Item> {
  /** The producing service's key: the export holds what its feed holds, so only the feed's readers may page through it. */
  readonly source: string;
  /** `/internal/v1/export/<entity>`. */
  readonly entity: string;
  /** Schema of `after`: a key of the last row of the previous page. */
  readonly after: TSchema;
  /** Schema of one item, when the export has a fixed shape. */
  readonly item?: TSchema;
  /** Up to `limit` items after `after`, in key order. */
  readonly read: (after: string | undefined, limit: number) => Promise<Item[]>;
  readonly keyOf: (item: Item) => string;
}

/**
 * The producer side of the paged export that reconciliation (`httpExportReader`) reads:
 * `GET /internal/v1/export/<entity>?after=&limit=` answers `{ items, next }`, `next` null on the
 * last page. One page more than asked is read, so a last page that happens to be full says so.
 *
 * @example
 * registerExport(app, { source: 'iam', entity: 'user', after: Uuid, read: users.exportAfter, keyOf: (u) => u.id });
 */
export function registerExport<Item>(app: HttpServer, options: ExportOptions<Item>): void {
  const response = options.item ? { 200: Type.Object({ items: Type.Array(options.item), next: Type.Union([Type.String(), Type.Null()]) }) } : undefined;
  app.get(
    `/internal/v1/export/${options.entity}`,
    {
      config: { callers: feedReaders(options.source) },
      schema: {
        hide: true,
        querystring: Type.Object({ after: Type.Optional(options.after), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }) }),
        ...(response ? { response } : {}),
      },
    },
    async (request) => {
      const { after, limit } = request.query as { after?: string; limit: number };
      const found = await options.read(after, limit + 1);
      const items = found.slice(0, limit);
      return { items, next: found.length > limit ? options.keyOf(items[items.length - 1]!) : null };
    },
  );
}

/** The export of one table: its live rows' DTOs in key order. */
export function crudExport<T extends CrudTable>(app: HttpServer, source: string, service: CrudService<T>): void {
  const { table, rows } = service;
  const keyOf = (item: Values) => String(item[table.key]);
  registerExport<Values>(app, {
    source,
    entity: table.name,
    after: table.key === 'id' ? Type.String({ format: 'uuid' }) : Type.String({ minLength: 1, maxLength: 100 }),
    item: table.schemas.row,
    read: async (after, limit) => (await rows.exportAfter(after, limit)).map((row) => crudDto(table, row) as Values),
    keyOf,
  });
}
