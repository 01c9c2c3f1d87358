import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { ReportQueries } from './report.queries.ts';

const Nullable = <T extends Type.TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const report = <T extends Type.TProperties>(columns: T) => ({ 200: Type.Object({ items: Type.Array(Type.Object(columns)) }) });

// pg reads a `date` as a Date at local midnight; its local calendar day is the stored date.
const calendarDay = (date: Date) =>
  `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;

/** Seed 000's reports over core's tables and lookup tables, as JSON rows. */
export function reportRoutes(app: HttpServer, reports: ReportQueries): void {
  const tags = ['reports'];
  app.get(
    '/api/v1/reports/resource-label',
    {
      schema: {
        tags,
        description: 'A resource with its label (seed 000: resources JOIN labels_lookup)',
        querystring: Type.Object({ reference_number: Type.String({ minLength: 1, maxLength: 11 }) }),
        response: report({ reference_number: Type.String(), first_name: Type.String(), last_name: Type.String(), label: Nullable(Type.String()), abbreviation: Nullable(Type.String()) }),
      },
    },
    async (request) => ({ items: await reports.resourceWithLabel(request.query.reference_number) }),
  );
  app.get(
    '/api/v1/reports/resource-addresses',
    {
      schema: {
        tags,
        description: 'Every resource with its addresses and their region names (seed 000: resource_addresses JOIN regions_lookup)',
        response: report({ reference_number: Type.String(), first_name: Type.String(), address_line1: Nullable(Type.String()), region_name: Nullable(Type.String()) }),
      },
    },
    async () => ({ items: await reports.resourceAddressesWithRegion() }),
  );
  app.get(
    '/api/v1/reports/resource-entries',
    {
      schema: {
        tags,
        description: "A resource's entries with classification descriptions (seed 000: entries JOIN classification_codes_lookup)",
        querystring: Type.Object({ resource_id: Type.String({ format: 'uuid' }) }),
        response: report({
          engagement_id: Nullable(Type.String({ format: 'uuid' })),
          entry_date: Type.String({ format: 'date' }),
          classification_code: Nullable(Type.String()),
          description: Nullable(Type.String()),
        }),
      },
    },
    async (request) => {
      const rows = await reports.entriesWithClassification(request.query.resource_id);
      return { items: rows.map((row) => ({ ...row, entry_date: calendarDay(row.entry_date) })) };
    },
  );
}
