import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { freePort, useTestDatabase } from '@archipelago/platform/testing';
import { buildApp as buildMasterdata } from '../../masterdata/src/app.ts';
import type { MasterdataDatabase } from '../../masterdata/src/database.ts';
import { seed as seedMasterdata } from '../../masterdata/src/seed.ts';
import { buildApp } from '../src/app.ts';
import type { CoreDatabase } from '../src/database.ts';
import { seed } from '../src/seed.ts';
import { coreTestApp } from './core-app.ts';

interface Items<T> {
  items: T[];
}

describe("seed 000's reports", async () => {
  const { app, db } = await coreTestApp();
  const john = await db.selectFrom('resources').select('id').where('reference_number', '=', 'REF001').executeTakeFirstOrThrow();

  it('returns a resource with its label, as the seed shows it', async () => {
    const response = await app.inject({ url: '/api/v1/reports/resource-label?reference_number=REF001' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ items: [{ reference_number: 'REF001', first_name: 'John', last_name: 'Smith', label: 'Mr.', abbreviation: 'Mr.' }] });
    expect((await app.inject({ url: '/api/v1/reports/resource-label?reference_number=NOPE' })).json()).toEqual({ items: [] });
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
});

// Seed 000's sequence end to end: masterdata (on loopback) and core, each with its own database.
describe('masterdata to core', async () => {
  const master = await useTestDatabase('masterdata');
  await withOwnerDatabase(master, seedMasterdata);
  const masterdata = await buildMasterdata({ db: master.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: master.appUrl });
  await masterdata.listen({ host: '127.0.0.1', port: await freePort() });
  const coreDb = await useTestDatabase('core');
  await withOwnerDatabase(coreDb, seed);
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const { port } = masterdata.server.address() as { port: number };
  const core = await buildApp({
    db: coreDb.db as Kysely<CoreDatabase>,
    logger: false,
    databaseUrl: coreDb.appUrl,
    peers: { masterdata: `http://127.0.0.1:${port}`, iam: nobody },
    reconcileAt: 'off',
  });
  afterAll(async () => {
    await core.close();
    await masterdata.close();
  });

  // Waits (bounded) until core's copy of a master row satisfies `done`.
  const lookupRow = async (table: string, code: string, done: (row: Record<string, unknown> | undefined) => boolean) => {
    for (let attempt = 0; attempt < 600; attempt++) {
      const row = (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} WHERE code = ${code}`.execute(coreDb.db)).rows[0];
      if (done(row)) return row;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${table} ${code} never got there`);
  };

  it("takes masterdata's export as its first snapshot", async () => {
    await lookupRow('classification_codes_lookup', 'F41.1', (row) => row !== undefined);
    await lookupRow('districts_lookup', 'US-TX-HARRIS', (row) => row !== undefined);
    const john = (await core.inject({ url: '/api/v1/reports/resource-label?reference_number=REF001' })).json<unknown>();
    expect(john).toEqual({ items: [{ reference_number: 'REF001', first_name: 'John', last_name: 'Smith', label: 'Mr.', abbreviation: 'Mr.' }] });
  });

  it('creates label PROF in masterdata, sees it in core, and reports a resource with it', async () => {
    const before = await core.inject({ method: 'POST', url: '/api/v1/resources', payload: { reference_number: 'REF900', label_code: 'PROF', first_name: 'Ada', last_name: 'Byron' } });
    expect(before.statusCode).toBe(422);
    const created = await masterdata.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'PROF', label: 'Prof.', display_name: 'Professor', abbreviation: 'Prof.', display_order: 5 } });
    expect(created.statusCode).toBe(201);
    expect(await lookupRow('labels_lookup', 'PROF', (row) => row !== undefined)).toMatchObject({ label: 'Prof.', source_version: 1 });

    const resource = await core.inject({ method: 'POST', url: '/api/v1/resources', payload: { reference_number: 'REF900', label_code: 'PROF', first_name: 'Ada', last_name: 'Byron' } });
    expect(resource.statusCode).toBe(201);
    const report = (await core.inject({ url: '/api/v1/reports/resource-label?reference_number=REF900' })).json<unknown>();
    expect(report).toEqual({ items: [{ reference_number: 'REF900', first_name: 'Ada', last_name: 'Byron', label: 'Prof.', abbreviation: 'Prof.' }] });
  });

  it('follows a renamed region into the address report, and refuses a deactivated department', async () => {
    await masterdata.inject({ method: 'PATCH', url: '/api/v1/regions/US-NY', payload: { name: 'State of New York' } });
    await lookupRow('regions_lookup', 'US-NY', (row) => row?.name === 'State of New York');
    const rows = (await core.inject({ url: '/api/v1/reports/resource-addresses' })).json<Items<{ address_line1: string; region_name: string }>>().items;
    expect(rows.find((row) => row.address_line1 === '42 Broadway')?.region_name).toBe('State of New York');

    await masterdata.inject({ method: 'PATCH', url: '/api/v1/departments/ER', payload: { is_active: false } });
    await lookupRow('departments_lookup', 'ER', (row) => row?.is_active === false);
    const order = await core.inject({ method: 'POST', url: '/api/v1/orders', payload: { item_name: 'Bandages', department_code: 'ER' } });
    expect(order.json()).toMatchObject({ status: 422, errors: [{ field: 'body.department_code', value: 'ER' }] });
  });

  it('keeps a sub-district event from upsetting core, which keeps no sub-districts', async () => {
    expect((await masterdata.inject({ method: 'POST', url: '/api/v1/sub-districts', payload: { code: 'US-CA-SF-SOMA', name: 'SoMa', district_code: 'US-CA-SF' } })).statusCode).toBe(201);
    await masterdata.inject({ method: 'POST', url: '/api/v1/departments', payload: { code: 'GERI', name: 'Geriatrics' } });
    await lookupRow('departments_lookup', 'GERI', (row) => row !== undefined);
    const { rows } = await sql`SELECT * FROM dead_letters`.execute(coreDb.db);
    expect(rows).toEqual([]);
  });
});
