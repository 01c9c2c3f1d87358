import { peerUrls } from '@archipelago/platform';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { useTestDatabase } from '@archipelago/platform/testing';
import { asPrincipal, testCredentials } from '@archipelago/platform/testing/credentials';
import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';
import { followFeed as followEvents, recordedEvents } from '@archipelago/platform/testing/events';
import { buildApp } from '../src/app.ts';
import type { MasterdataDatabase } from '../src/database.ts';
import { seed } from '../src/seed.ts';

interface Dto {
  id: string;
  code: string;
  is_active: boolean;
  version: number;
  [column: string]: unknown;
}
interface FeedEvent {
  type: string;
  aggregate: { type: string; id: string; version: number };
  payload: Dto;
  metadata: { correlationId?: string; userId?: string };
}
interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; value?: unknown }[];
}

describe('masterdata reference entities', async () => {
  const database = await useTestDatabase('masterdata');
  await withOwnerDatabase(database, seed);
  await withOwnerDatabase(database, seed);
  const identity = await startTestIdentity();
  const server = await buildApp({
    db: database.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: database.appUrl, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: identity.url }),
    auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('masterdata') }) }),
  });
  const admin = identity.user();
  const app = asUser(server, await identity.token(admin)); // a signed-in administrator
  afterAll(async () => {
    await server.close();
    await identity.close();
  });
  const recorded = () => recordedEvents<FeedEvent>(database.db);
  const followFeed = (match: (event: FeedEvent & { position: string }) => boolean) => followEvents(app, match);

  const get = (url: string) => asPrincipal(app, 'core', 'masterdata').inject({ url }); // internal routes need core's token
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
  const patch = (url: string, payload: object) => app.inject({ method: 'PATCH', url, payload });
  const del = (url: string) => app.inject({ method: 'DELETE', url });
  const codes = (body: { items: Dto[] }) => body.items.map((item) => item.code);

  // One row per entity: a valid new row, a change to it, and a filter that finds it.
  const cases = [
    { entity: 'region', path: '/api/v1/regions', create: { code: 'US-OR', name: 'Oregon', zone: 'West' }, change: { name: 'State of Oregon' }, filter: 'zone=West' },
    { entity: 'district', path: '/api/v1/districts', create: { code: 'US-CA-ALA', name: 'Alameda County', region_code: 'US-CA' }, change: { name: 'Alameda' }, filter: 'region_code=US-CA' },
    { entity: 'sub-district', path: '/api/v1/sub-districts', create: { code: 'US-CA-LA-SM', name: 'Santa Monica', district_code: 'US-CA-LA' }, change: { is_active: false }, filter: 'district_code=US-CA-LA' },
    { entity: 'department', path: '/api/v1/departments', create: { code: 'NEURO', name: 'Neurology' }, change: { name: 'Neurology and Neurosurgery' }, filter: '' },
    { entity: 'classification-code', path: '/api/v1/classification-codes', create: { code: 'E66.9', description: 'Obesity, unspecified', category: 'Endocrine, nutritional and metabolic diseases' }, change: { description: 'Obesity' }, filter: 'category=Endocrine%2C%20nutritional%20and%20metabolic%20diseases' },
  ] as const;

  it('serves the seeded master data with filters', async () => {
    const regions = (await get('/api/v1/regions?limit=100')).json<{ items: Dto[]; total: number }>();
    expect(regions.total).toBe(6);
    expect((await get('/api/v1/regions/US-CA')).json()).toMatchObject({ code: 'US-CA', name: 'California', zone: 'West', is_active: true, version: 1 });
    expect(codes((await get('/api/v1/regions?zone=West')).json())).toEqual(['US-CA', 'US-WA']);
    expect(codes((await get('/api/v1/districts?region_code=US-CA')).json())).toEqual(['US-CA-LA', 'US-CA-SD', 'US-CA-SF']);
    expect(codes((await get('/api/v1/sub-districts?district_code=US-CA-LA')).json())).toEqual(['US-CA-LA-LB', 'US-CA-LA-PAS']);
    expect((await get('/api/v1/departments?limit=2&offset=1')).json()).toMatchObject({ total: 6, limit: 2, offset: 1, items: [{ code: 'ENDO' }, { code: 'ER' }] });
    expect((await get('/api/v1/classification-codes/E11.9')).json()).toMatchObject({
      code: 'E11.9',
      description: 'Type 2 diabetes mellitus without complications',
      category: 'Endocrine, nutritional and metabolic diseases',
    });
    const bad = await get('/api/v1/regions?zone=&limit=0');
    expect(bad.statusCode).toBe(400);
    expect(bad.json<Problem>().errors!.map((e) => e.field).sort()).toEqual(['querystring.limit', 'querystring.zone']);
  });

  for (const c of cases) {
    it(`creates, reads, changes, lists and deletes a ${c.entity}, each change with its event`, async () => {
      const created = await app.inject({ method: 'POST', url: c.path, payload: c.create, headers: { 'x-request-id': `req-${c.entity}` } });
      expect(created.statusCode).toBe(201);
      const dto = created.json<Dto>();
      expect(dto).toEqual({ id: expect.any(String) as string, ...c.create, is_active: true, version: 1 });
      expect((await get(`${c.path}/${c.create.code}`)).json()).toEqual(dto);

      const changed = await patch(`${c.path}/${c.create.code}`, c.change);
      expect(changed.statusCode).toBe(200);
      expect(changed.json()).toEqual({ ...dto, ...c.change, version: 2 });
      const filtered = (await get(`${c.path}?limit=500&${c.filter}`)).json<{ items: Dto[] }>();
      expect(codes(filtered)).toContain(c.create.code);
      const activeOnly = (await get(`${c.path}?limit=500&active=true&${c.filter}`)).json<{ items: Dto[] }>();
      expect(codes(activeOnly).includes(c.create.code)).toBe(!('is_active' in c.change));

      expect((await del(`${c.path}/${c.create.code}`)).statusCode).toBe(204);
      expect((await get(`${c.path}/${c.create.code}`)).statusCode).toBe(404);
      expect((await del(`${c.path}/${c.create.code}`)).statusCode).toBe(404);

      const events = (await recorded()).filter((e) => e.aggregate.type === c.entity && e.aggregate.id === c.create.code);
      expect(events.map((e) => [e.type, e.aggregate.version])).toEqual([
        [`${c.entity}.created`, 1],
        [`${c.entity}.updated`, 2],
        [`${c.entity}.deleted`, 3],
      ]);
      expect(events[0]!.payload).toEqual(dto);
      expect(events[1]!.payload).toEqual(changed.json());
      expect(events[2]!.payload).toEqual({ ...changed.json<Dto>(), version: 3 });
      expect(events[0]!.metadata).toEqual({ correlationId: `req-${c.entity}`, userId: admin.id });
      const served = await followFeed((e) => e.type === `${c.entity}.deleted` && e.aggregate.id === c.create.code);
      expect(served).toMatchObject({ source: 'masterdata', aggregate: { version: 3 }, payload: events[2]!.payload });
    });
  }

  it('revives a deleted code with its version counting on', async () => {
    await post('/api/v1/departments', { code: 'ONCO', name: 'Oncology' });
    await del('/api/v1/departments/ONCO');
    const revived = await post('/api/v1/departments', { code: 'ONCO', name: 'Oncology (new)' });
    expect(revived.statusCode).toBe(201);
    expect(revived.json()).toMatchObject({ code: 'ONCO', name: 'Oncology (new)', is_active: true, version: 3 });
  });

  it('rejects a parent code that names no live parent with 422 naming field and value, and records nothing', async () => {
    const before = (await recorded()).length;
    const unknown = await post('/api/v1/districts', { code: 'US-ZZ-X', name: 'Nowhere County', region_code: 'US-ZZ' });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json<Problem>()).toMatchObject({ code: 'UNPROCESSABLE_REFERENCE', errors: [{ field: 'body.region_code', value: 'US-ZZ' }] });
    const moved = await patch('/api/v1/districts/US-CA-LA', { region_code: 'US-ZZ' });
    expect(moved.statusCode).toBe(422);
    expect(moved.json<Problem>().errors).toEqual([expect.objectContaining({ field: 'body.region_code', value: 'US-ZZ' })]);
    const orphan = await post('/api/v1/sub-districts', { code: 'X-1', name: 'Orphan', district_code: 'US-ZZ-X' });
    expect(orphan.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.district_code', value: 'US-ZZ-X' }] });
    expect((await get('/api/v1/districts/US-ZZ-X')).statusCode).toBe(404);
    expect((await get('/api/v1/districts/US-CA-LA')).json()).toMatchObject({ region_code: 'US-CA', version: 1 });
    expect((await recorded()).length).toBe(before);
  });

  it('moves a district to another live region', async () => {
    await post('/api/v1/districts', { code: 'US-WA-PIERCE', name: 'Pierce County', region_code: 'US-CA' });
    const moved = await patch('/api/v1/districts/US-WA-PIERCE', { region_code: 'US-WA' });
    expect(moved.json()).toMatchObject({ region_code: 'US-WA', version: 2 });
  });

  it('rejects a taken code with 409 and input that breaks the schema with 400', async () => {
    const before = (await recorded()).length;
    const taken = await post('/api/v1/regions', { code: 'US-CA', name: 'California again', zone: 'West' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json<Problem>()).toMatchObject({ code: 'CONFLICT', errors: [{ field: 'body.code', value: 'US-CA' }] });
    const bad = await post('/api/v1/regions', { code: 'us ca', name: '', zone: 'Far far away', extra: true });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<Problem>().errors!.map((e) => e.field)).toEqual(expect.arrayContaining(['body.code', 'body.name', 'body.zone']));
    expect((await patch('/api/v1/regions/US-CA', {})).statusCode).toBe(400);
    expect((await patch('/api/v1/regions/US-CA', { code: 'US-XX' })).statusCode).toBe(400);
    expect((await recorded()).length).toBe(before);
  });

  it('refuses to delete a parent that still has live children (409), and deletes it once they are gone', async () => {
    await post('/api/v1/regions', { code: 'US-NV', name: 'Nevada', zone: 'West' });
    await post('/api/v1/districts', { code: 'US-NV-CLARK', name: 'Clark County', region_code: 'US-NV' });
    await post('/api/v1/sub-districts', { code: 'US-NV-CLARK-LV', name: 'Las Vegas', district_code: 'US-NV-CLARK' });
    const before = (await recorded()).length;

    const region = await del('/api/v1/regions/US-NV');
    expect(region.statusCode).toBe(409);
    expect(region.json<Problem>()).toMatchObject({ code: 'CONFLICT', errors: [{ field: 'params.code', value: 'US-NV' }] });
    expect(region.json<Problem>().detail).toContain('US-NV-CLARK');
    expect((await del('/api/v1/districts/US-NV-CLARK')).statusCode).toBe(409);
    expect((await get('/api/v1/regions/US-NV')).json()).toMatchObject({ version: 1 });
    expect((await recorded()).length).toBe(before);

    // An inactive child is still live: it keeps its parent.
    await patch('/api/v1/sub-districts/US-NV-CLARK-LV', { is_active: false });
    expect((await del('/api/v1/districts/US-NV-CLARK')).statusCode).toBe(409);
    expect((await del('/api/v1/sub-districts/US-NV-CLARK-LV')).statusCode).toBe(204);
    expect((await del('/api/v1/districts/US-NV-CLARK')).statusCode).toBe(204);
    expect((await del('/api/v1/regions/US-NV')).statusCode).toBe(204);
    const deleted = await post('/api/v1/districts', { code: 'US-NV-WASHOE', name: 'Washoe County', region_code: 'US-NV' });
    expect(deleted.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.region_code', value: 'US-NV' }] });
  });

  it('never leaves a live child under a deleted parent when both happen at once', async () => {
    for (let round = 0; round < 10; round++) {
      const region = `US-R${round}`;
      await post('/api/v1/regions', { code: region, name: `Region ${round}`, zone: 'East' });
      const [deleted, created] = await Promise.all([
        del(`/api/v1/regions/${region}`),
        post('/api/v1/districts', { code: `${region}-D`, name: 'Racing County', region_code: region }),
      ]);
      // Exactly one wins: the district (and the region stays) or the delete (and no district).
      expect([deleted.statusCode, created.statusCode].sort()).toEqual(deleted.statusCode === 204 ? [204, 422] : [201, 409]);
      const orphans = await sql`
        SELECT d.code FROM districts d JOIN regions r ON r.code = d.region_code
        WHERE d.deleted_at IS NULL AND r.deleted_at IS NOT NULL`.execute(database.db);
      expect(orphans.rows).toEqual([]);
    }
  });

  it('writes nothing when its event cannot be recorded', async () => {
    await withOwnerDatabase(database, (db) => sql`REVOKE INSERT ON outbox FROM masterdata_app`.execute(db));
    try {
      expect((await post('/api/v1/regions', { code: 'US-HALF', name: 'Half', zone: 'East' })).statusCode).toBe(500);
      expect((await patch('/api/v1/regions/US-CA', { name: 'Half-changed' })).statusCode).toBe(500);
    } finally {
      await withOwnerDatabase(database, (db) => sql`GRANT INSERT ON outbox TO masterdata_app`.execute(db));
    }
    expect((await get('/api/v1/regions/US-HALF')).statusCode).toBe(404);
    expect((await get('/api/v1/regions/US-CA')).json()).toMatchObject({ name: 'California', version: 1 });
  });

  it('tells other services which codes name live departments, and whether they are active', async () => {
    expect((await patch('/api/v1/departments/PHARM', { is_active: false })).statusCode).toBe(200);
    expect((await del('/api/v1/departments/ER')).statusCode).toBe(204);
    const answer = await asPrincipal(server, 'iam', 'masterdata').inject({ method: 'POST', url: '/internal/v1/departments/validate', payload: { codes: ['CARDIO', 'PHARM', 'ER', 'NOPE', '_never', 'CARDIO'] } });
    expect(answer.json()).toEqual({ items: [{ code: 'CARDIO', active: true }, { code: 'PHARM', active: false }] });
    expect((await asPrincipal(server, 'iam', 'masterdata').inject({ method: 'POST', url: '/internal/v1/departments/validate', payload: { codes: ['x'.repeat(200)] } })).json()).toMatchObject({ status: 400, errors: [{ field: 'body.codes.0' }] });
    expect((await patch('/api/v1/departments/PHARM', { is_active: true })).statusCode).toBe(200);
    expect((await post('/api/v1/departments', { code: 'ER', name: 'Emergency' })).statusCode).toBe(201);
  });

  it('documents the public API in OpenAPI and hides the export', async () => {
    const paths = Object.keys((await get('/docs/json')).json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/regions', '/api/v1/sub-districts/{code}', '/api/v1/classification-codes']));
    expect(paths.filter((path) => path.startsWith('/internal'))).toEqual([]);
  });

  describe('export for reconciliation', () => {
    const page = async (entity: string, query: string) => {
      const response = await get(`/internal/v1/export/${entity}?${query}`);
      expect(response.statusCode).toBe(200);
      return response.json<{ items: Dto[]; next: string | null }>();
    };

    it('pages by code in byte order, inactive rows included, deleted rows left out', async () => {
      await post('/api/v1/departments', { code: 'A-INACTIVE', name: 'Old ward', is_active: false });
      await post('/api/v1/departments', { code: 'B-GONE', name: 'Closed ward' });
      await del('/api/v1/departments/B-GONE');
      const { rows } = await sql<{ code: string }>`SELECT code FROM departments WHERE deleted_at IS NULL ORDER BY code COLLATE "C"`.execute(database.db);
      const expected = rows.map((row) => row.code);
      expect(expected).toContain('A-INACTIVE');

      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 20; i++) {
        const body = await page('department', `limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...body.items.map((item) => item.code));
        after = body.next;
        if (after === null) break;
        expect(after).toBe(body.items[body.items.length - 1]!.code);
      }
      expect(seen).toEqual(expected);
      expect(seen).not.toContain('B-GONE');
      const all = await page('department', 'limit=1000');
      expect(all.next).toBeNull();
      expect(all.items.find((item) => item.code === 'A-INACTIVE')).toEqual({ id: expect.any(String) as string, code: 'A-INACTIVE', name: 'Old ward', is_active: false, version: 1 });
    });

    it('serves every entity under its event name, the same DTO as the API', async () => {
      for (const [entity, path] of [['label', 'labels'], ['region', 'regions'], ['district', 'districts'], ['sub-district', 'sub-districts'], ['department', 'departments'], ['classification-code', 'classification-codes']]) {
        const first = (await page(entity!, 'limit=1')).items[0]!;
        expect((await get(`/api/v1/${path}/${first.code}`)).json()).toEqual(first);
      }
      expect((await page('classification-code', 'after=E11.9&limit=1')).items.map((item) => item.code)).toEqual(['E78.5']);
      expect((await get('/internal/v1/export/region?limit=0')).statusCode).toBe(400);
      expect((await get('/internal/v1/export/region?limit=1001')).statusCode).toBe(400);
      expect((await get('/internal/v1/export/region')).json<{ items: Dto[] }>().items.length).toBeGreaterThanOrEqual(6);
    });
  });
});
