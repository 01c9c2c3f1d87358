import { describe, expect, it } from 'vitest';
import { coreTestApp } from './core-app.ts';

interface Items<T> {
  items: T[];
}

describe("core's reports", async () => {
  const { app, db } = await coreTestApp();
  const john = await db.selectFrom('resources').select('id').where('reference_number', '=', 'REF001').executeTakeFirstOrThrow();

  it('returns a resource with its label, as the seed shows it', async () => {
    const response = await app.inject({ url: '/api/v1/reports/resource-label?reference_number=REF001' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ items: [{ reference_number: 'REF001', first_name: 'John', last_name: 'Smith', label: 'Mr.', abbreviation: 'Mr.' }], total: 1, limit: 50, offset: 0 });
    expect((await app.inject({ url: '/api/v1/reports/resource-label?reference_number=NOPE' })).json()).toEqual({ items: [], total: 0, limit: 50, offset: 0 });
    expect((await app.inject({ url: '/api/v1/reports/resource-label' })).json()).toMatchObject({ status: 400, errors: [{ field: 'querystring.reference_number' }] });
  });

  it('returns resource addresses with region names', async () => {
    const body = (await app.inject({ url: '/api/v1/reports/resource-addresses' })).json<Items<Record<string, unknown>>>();
    const sorted = body.items.sort((a, b) => `${String(a.reference_number)}${String(a.address_line1)}`.localeCompare(`${String(b.reference_number)}${String(b.address_line1)}`));
    expect(sorted).toEqual([
      { reference_number: 'REF001', first_name: 'John', address_line1: '123 Main Street', region_name: 'California' },
      { reference_number: 'REF001', first_name: 'John', address_line1: '500 Market Street', region_name: 'California' },
      { reference_number: 'REF002', first_name: 'Jane', address_line1: '42 Broadway', region_name: 'New York' },
    ]);
  });

  it("returns a resource's entries with classification descriptions", async () => {
    const body = (await app.inject({ url: `/api/v1/reports/resource-entries?resource_id=${john.id}` })).json<Items<{ classification_code: string }>>();
    expect(body.items.sort((a, b) => a.classification_code.localeCompare(b.classification_code))).toEqual([
      { engagement_id: '00000000-0000-4000-8002-000000000001', entry_date: '2025-01-15', classification_code: 'E11.9', description: 'Type 2 diabetes mellitus without complications' },
      { engagement_id: '00000000-0000-4000-8002-000000000001', entry_date: '2025-01-15', classification_code: 'I10', description: 'Essential (primary) hypertension' },
    ]);
    expect((await app.inject({ url: '/api/v1/reports/resource-entries?resource_id=x' })).statusCode).toBe(400);
  });

  it('lists the reports with their parameters, columns and paging', async () => {
    const listed = (await app.inject({ url: '/api/v1/reports' })).json<{ items: { name: string; path: string; parameters: { name: string; required: boolean }[]; columns: string[] }[] }>();
    expect(listed.items.map((r) => r.name)).toEqual(['resource-label', 'resource-addresses', 'resource-entries']);
    const label = listed.items[0]!;
    expect(label.path).toBe('/api/v1/reports/resource-label');
    expect(label.parameters).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'reference_number', required: true }),
      expect.objectContaining({ name: 'limit', required: false }),
      expect.objectContaining({ name: 'offset', required: false }),
    ]) as unknown);
    expect(label.columns).toContain('abbreviation');
    for (const report of listed.items) expect((await app.inject({ url: report.path })).statusCode, report.path).not.toBe(404);
  });

  it('pages a report, validating limit and offset like every list', async () => {
    const first = (await app.inject({ url: '/api/v1/reports/resource-addresses?limit=2' })).json<{ items: { address_line1: string }[]; total: number; limit: number; offset: number }>();
    expect(first).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(first.items).toHaveLength(2);
    const rest = (await app.inject({ url: '/api/v1/reports/resource-addresses?limit=2&offset=2' })).json<{ items: { address_line1: string }[] }>();
    expect(rest.items).toHaveLength(1);
    expect([...first.items, ...rest.items].map((r) => r.address_line1).sort()).toEqual(['123 Main Street', '42 Broadway', '500 Market Street']);
    expect((await app.inject({ url: '/api/v1/reports/resource-addresses?offset=10' })).json()).toMatchObject({ items: [], total: 3 });
    for (const query of ['limit=0', 'limit=501', 'offset=-1', 'offset=99999999999999999999', 'limit=abc']) {
      const response = await app.inject({ url: `/api/v1/reports/resource-addresses?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json<{ errors: { field: string }[] }>().errors[0]?.field, query).toMatch(/^querystring\.(limit|offset)$/);
    }
  });
});
