import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import type { ReportFile, ReportRepository } from './report.repository.ts';

const Nullable = <T extends Type.TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
}, { additionalProperties: false });

const SubscriptionStatus = Type.Object({
  service: Type.String(),
  subscription: Type.String(),
  enabled: Type.Boolean(),
  streaming: Type.Boolean(),
  lagBytes: Nullable(Type.Number()),
  lagSeconds: Nullable(Type.Number()),
  retainedBytes: Nullable(Type.Number()),
  walStatus: Nullable(Type.String()),
  applyErrors: Type.Number(),
  syncErrors: Type.Number(),
  conflicts: Type.Number(),
  warnings: Type.Array(Type.String()),
});

const num = (value: string | null) => (value === null ? null : Number(value));

/**
 * `GET /api/v1/reporting/status`, `GET /api/v1/reporting/reports` and one route per report file;
 * guarded by `reporting:read` (the `/api/v1/reporting` convention of protectApiRoutes).
 * A slot retaining more than `maxRetainedBytes` is a warning.
 */
export function reportRoutes(app: HttpServer, repository: ReportRepository, reports: readonly ReportFile[], options: { maxRetainedBytes: number; sourceOf: (subscription: string) => string }): void {
  app.get('/api/v1/reporting/status', { schema: { response: { 200: Type.Object({ subscriptions: Type.Array(SubscriptionStatus) }) } } }, async () => {
    const rows = await repository.subscriptions();
    return {
      subscriptions: rows.map((r) => {
        const warnings: string[] = [];
        if (!r.enabled) warnings.push('subscription disabled: its slot retains WAL until it is enabled');
        if (r.wal_status === 'lost') warnings.push('the slot lost WAL it needed: run `reporting resync`');
        else if (r.retained_bytes !== null && Number(r.retained_bytes) > options.maxRetainedBytes) warnings.push(`the slot retains ${r.retained_bytes} bytes of WAL (more than ${options.maxRetainedBytes})`);
        if (Number(r.apply_errors) > 0) warnings.push('apply errors: see the reporting PostgreSQL log');
        return {
          service: options.sourceOf(r.subscription),
          subscription: r.subscription,
          enabled: r.enabled,
          streaming: r.streaming,
          lagBytes: num(r.lag_bytes),
          lagSeconds: r.lag_seconds,
          retainedBytes: num(r.retained_bytes),
          walStatus: r.wal_status,
          applyErrors: Number(r.apply_errors),
          syncErrors: Number(r.sync_errors),
          conflicts: Number(r.conflicts),
          warnings,
        };
      }),
    };
  });

  app.get('/api/v1/reporting/reports', { schema: { response: { 200: Type.Object({ items: Type.Array(Type.Object({ name: Type.String(), description: Type.String() })) }) } } }, () => ({
    items: reports.map((r) => ({ name: r.name, description: r.description })),
  }));

  app.get<{ Params: { name: string }; Querystring: { limit: number; offset: number } }>(
    '/api/v1/reporting/reports/:name',
    { schema: { params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9-]{1,100}$' }) }), querystring: PageQuery } },
    async (request) => {
      const report = reports.find((r) => r.name === request.params.name);
      if (!report) throw new AppError('NOT_FOUND', `No report ${request.params.name} (see GET /api/v1/reporting/reports)`);
      const { items, total } = await repository.run(report, request.query.limit, request.query.offset);
      return { items, total, limit: request.query.limit, offset: request.query.offset };
    },
  );
}
