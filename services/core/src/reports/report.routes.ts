import Type, { type TObject, type TProperties, type TSchema } from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { Page, ReportQueries } from './report.queries.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

// pg reads a `date` as a Date at local midnight; its local calendar day is the stored date.
const calendarDay = (date: Date) =>
  `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;

/** `?limit&offset`, as on every list. */
const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
};

interface Report {
  readonly name: string;
  readonly description: string;
  /** The report's own parameters (paging is added to every report). */
  readonly parameters: TProperties;
  readonly columns: TProperties;
  readonly run: (query: Record<string, string>, page: Page) => Promise<{ items: object[]; total: number }>;
}

// Core's reports, declared once: their routes and the `GET /api/v1/reports` catalogue derive from this.
function coreReports(reports: ReportQueries): Report[] {
  return [
    {
      name: 'resource-label',
      description: 'A resource with its label (resources JOIN labels_lookup)',
      parameters: { reference_number: Type.String({ minLength: 1, maxLength: 11, description: 'e.g. REF001' }) },
      columns: { reference_number: Type.String(), first_name: Type.String(), last_name: Type.String(), label: Nullable(Type.String()), abbreviation: Nullable(Type.String()) },
      run: (query, page) => reports.resourceWithLabel(query.reference_number!, page),
    },
    {
      name: 'resource-addresses',
      description: 'Every resource with its addresses and their region names (resource_addresses JOIN regions_lookup)',
      parameters: {},
      columns: { reference_number: Type.String(), first_name: Type.String(), address_line1: Nullable(Type.String()), region_name: Nullable(Type.String()) },
      run: (_query, page) => reports.resourceAddressesWithRegion(page),
    },
    {
      name: 'resource-entries',
      description: "A resource's entries with classification descriptions (entries JOIN classification_codes_lookup)",
      parameters: { resource_id: Type.String({ format: 'uuid' }) },
      columns: {
        engagement_id: Nullable(Type.String({ format: 'uuid' })),
        entry_date: Type.String({ format: 'date' }),
        classification_code: Nullable(Type.String()),
        description: Nullable(Type.String()),
      },
      run: async (query, page) => {
        const result = await reports.entriesWithClassification(query.resource_id!, page);
        return { ...result, items: result.items.map((row) => ({ ...row, entry_date: calendarDay(row.entry_date) })) };
      },
    },
  ];
}

const ReportDescription = Type.Object({
  name: Type.String(),
  path: Type.String(),
  description: Type.String(),
  parameters: Type.Array(Type.Object({ name: Type.String(), in: Type.Literal('query'), required: Type.Boolean(), schema: Type.Unknown() })),
  columns: Type.Array(Type.String()),
});

/** Core's reports over its tables and lookup tables, as paged JSON rows, and their catalogue. */
export function reportRoutes(app: HttpServer, queries: ReportQueries): void {
  const tags = ['reports'];
  const reports = coreReports(queries);
  for (const report of reports) {
    const querystring: TObject = Type.Object({ ...report.parameters, ...PageQuery });
    app.get(
      `/api/v1/reports/${report.name}`,
      {
        schema: {
          tags,
          description: report.description,
          querystring,
          response: { 200: Type.Object({ items: Type.Array(Type.Object(report.columns)), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) },
        },
      },
      async (request) => {
        const { limit, offset, ...query } = request.query as unknown as Record<string, string> & Page;
        const result = await report.run(query, { limit, offset });
        return { total: result.total, items: result.items as Record<string, unknown>[], limit, offset };
      },
    );
  }
  const catalogue = reports.map((report) => {
    const parameters = { ...report.parameters, ...PageQuery } as Record<string, TSchema>;
    return {
      name: report.name,
      path: `/api/v1/reports/${report.name}`,
      description: report.description,
      parameters: Object.entries(parameters).map(([name, schema]) => ({ name, in: 'query' as const, required: name in report.parameters, schema: { ...schema } })),
      columns: Object.keys(report.columns),
    };
  });
  app.get(
    '/api/v1/reports',
    { schema: { tags, description: 'The reports there are, with their parameters and columns', response: { 200: Type.Object({ items: Type.Array(ReportDescription) }) } } },
    () => ({ items: catalogue }),
  );
}
