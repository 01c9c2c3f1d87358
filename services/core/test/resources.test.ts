import { describe, expect, it } from 'vitest';
import { followFeed as followEvents, recordedEvents } from '@archipelago/platform/testing/events';
import { coreTestApp } from './core-app.ts';

interface Row {
  id: string;
  version: number;
  [key: string]: unknown;
}
interface Page {
  items: Row[];
  total: number;
}
interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; value?: unknown }[];
}
interface FeedEvent {
  type: string;
  aggregate: { type: string; id: string; version: number };
  payload: Row;
}

describe('core resources, addresses, engagements, intakes and records', async () => {
  const { app, database, db } = await coreTestApp();
  const recorded = () => recordedEvents<FeedEvent>(database.db);
  const followFeed = (match: (event: FeedEvent & { position: string }) => boolean) => followEvents(app, match);

  const get = (url: string) => app.inject({ url });
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
  const patch = (url: string, payload: object) => app.inject({ method: 'PATCH', url, payload });
  const del = (url: string) => app.inject({ method: 'DELETE', url });
  const newResource = async (reference_number: string, extra: object = {}) => {
    const response = await post('/api/v1/resources', { reference_number, first_name: 'Ada', last_name: 'Lovelace', ...extra });
    expect(response.statusCode).toBe(201);
    return response.json<Row>();
  };

  it('serves the seeded resource REF001 John Smith with its addresses', async () => {
    const page = (await get('/api/v1/resources?reference_number=REF001')).json<Page>();
    expect(page.total).toBe(1);
    const john = page.items[0]!;
    expect(john).toMatchObject({ reference_number: 'REF001', label_code: 'MR', first_name: 'John', last_name: 'Smith', date_of_birth: '1970-04-12' });
    const addresses = (await get(`/api/v1/resources/${john.id}/addresses`)).json<Page>();
    expect(addresses.items.map((a) => [a.address_line1, a.region_code])).toEqual([
      ['123 Main Street', 'US-CA'],
      ['500 Market Street', 'US-CA'],
    ]);
  });

  it('creates, reads, changes and deletes a resource, each change with its resource.* event', async () => {
    const created = await post('/api/v1/resources', { reference_number: 'REF100', label_code: 'DR', first_name: 'Grace', last_name: 'Hopper', date_of_birth: '1906-12-09' });
    expect(created.statusCode).toBe(201);
    const grace = created.json<Row>();
    expect(grace).toMatchObject({ reference_number: 'REF100', label_code: 'DR', date_of_birth: '1906-12-09', email: null, version: 1 });
    expect((await get(`/api/v1/resources/${grace.id}`)).json()).toEqual(grace);
    const changed = await patch(`/api/v1/resources/${grace.id}`, { last_name: 'Murray Hopper', email: 'grace@example.com' });
    expect(changed.json()).toMatchObject({ last_name: 'Murray Hopper', email: 'grace@example.com', reference_number: 'REF100', version: 2 });
    expect((await patch(`/api/v1/resources/${grace.id}`, { reference_number: 'REF101' })).statusCode).toBe(400);
    expect((await del(`/api/v1/resources/${grace.id}`)).statusCode).toBe(204);
    expect((await get(`/api/v1/resources/${grace.id}`)).statusCode).toBe(404);
    expect((await get('/api/v1/resources?reference_number=REF100')).json<Page>().total).toBe(0);

    const events = (await recorded()).filter((e) => e.aggregate.id === grace.id);
    expect(events.map((e) => [e.type, e.aggregate.type, e.aggregate.version])).toEqual([
      ['resource.created', 'resource', 1],
      ['resource.updated', 'resource', 2],
      ['resource.deleted', 'resource', 3],
    ]);
    expect(events[0]!.payload).toEqual(grace);
    expect(events[1]!.payload).toEqual(changed.json());
    expect(await followFeed((e) => e.type === 'resource.deleted' && e.aggregate.id === grace.id)).toMatchObject({ source: 'core', aggregate: { version: 3 } });
  });

  it('rejects a taken reference number (409), an unknown label (422) and bad input (400), recording nothing', async () => {
    const before = (await recorded()).length;
    const taken = await post('/api/v1/resources', { reference_number: 'REF001', first_name: 'J', last_name: 'S' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json<Problem>()).toMatchObject({ errors: [{ field: 'body.reference_number', value: 'REF001' }] });
    const label = await post('/api/v1/resources', { reference_number: 'REF102', label_code: 'PROF', first_name: 'J', last_name: 'S' });
    expect(label.statusCode).toBe(422);
    expect(label.json<Problem>()).toMatchObject({ errors: [{ field: 'body.label_code', value: 'PROF' }] });
    const john = (await get('/api/v1/resources?reference_number=REF001')).json<Page>().items[0]!;
    expect((await patch(`/api/v1/resources/${john.id}`, { label_code: 'PROF' })).statusCode).toBe(422);
    const bad = await post('/api/v1/resources', { reference_number: 'ref 1', first_name: '', email: 'not-an-email' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<Problem>().errors!.map((e) => e.field)).toEqual(expect.arrayContaining(['body.reference_number', 'body.first_name', 'body.last_name', 'body.email']));
    expect((await recorded()).length).toBe(before);
  });

  it('keeps addresses under their resource, with region and district codes checked', async () => {
    const ada = await newResource('REF200');
    const base = `/api/v1/resources/${ada.id}/addresses`;
    const created = await post(base, { address_line1: '1 Infinite Loop', city: 'Cupertino', region_code: 'US-CA', district_code: 'US-CA-SF', is_primary: true });
    expect(created.statusCode).toBe(201);
    const address = created.json<Row>();
    expect(address).toMatchObject({ resource_id: ada.id, address_type: 'HOME', is_primary: true, version: 1 });
    expect((await patch(`${base}/${address.id}`, { address_line2: 'Building 4' })).json()).toMatchObject({ address_line2: 'Building 4', version: 2 });

    const region = await post(base, { address_line1: 'x', region_code: 'US-ZZ' });
    expect(region.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.region_code', value: 'US-ZZ' }] });
    expect((await post('/api/v1/resources/00000000-0000-4000-8000-00000000ffff/addresses', { address_line1: 'x' })).statusCode).toBe(404);
    // A district must lie in the address's region.
    const astray = await post(base, { address_line1: 'x', region_code: 'US-NY', district_code: 'US-CA-LA' });
    expect(astray.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.district_code', value: 'US-CA-LA' }] });
    expect(astray.json<Problem>().detail).toBe('district_code US-CA-LA lies in region_code US-CA, not US-NY');
    const moved = await patch(`${base}/${address.id}`, { region_code: 'US-NY' });
    expect(moved.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.district_code', value: 'US-CA-SF' }] });
    expect((await patch(`${base}/${address.id}`, { region_code: 'US-NY', district_code: 'US-NY-NY' })).json()).toMatchObject({ region_code: 'US-NY', version: 3 });
    // An address is reached through its own resource only.
    const john = (await get('/api/v1/resources?reference_number=REF001')).json<Page>().items[0]!;
    expect((await get(`/api/v1/resources/${john.id}/addresses/${address.id}`)).statusCode).toBe(404);
    expect((await del(`/api/v1/resources/${john.id}/addresses/${address.id}`)).statusCode).toBe(404);
    expect((await patch(`${base}/${address.id}`, { resource_id: john.id })).statusCode).toBe(400);

    // Deleting the resource deletes its addresses with it.
    expect((await del(`/api/v1/resources/${ada.id}`)).statusCode).toBe(204);
    const left = await db.selectFrom('resource_addresses').select('id').where('resource_id', '=', ada.id).execute();
    expect(left).toEqual([]);
  });

  it('records engagements, intakes and records of a resource, with their codes and parents checked', async () => {
    const ada = await newResource('REF300');
    const engagement = await post('/api/v1/engagements', { resource_id: ada.id, department_code: 'CARDIO', engagement_type: 'OUTPATIENT', started_at: '2025-02-01T09:00:00Z' });
    expect(engagement.statusCode).toBe(201);
    const visit = engagement.json<Row>();
    expect(visit).toMatchObject({ status: 'OPEN', ended_at: null, started_at: '2025-02-01T09:00:00.000Z' });
    expect((await patch(`/api/v1/engagements/${visit.id}`, { status: 'CLOSED', ended_at: '2025-02-01T10:00:00Z' })).json()).toMatchObject({ status: 'CLOSED', version: 2 });

    const intake = await post('/api/v1/intakes', { resource_id: ada.id, engagement_id: visit.id, reason: 'Chest pain', priority: 'URGENT' });
    expect(intake.json()).toMatchObject({ resource_id: ada.id, engagement_id: visit.id, priority: 'URGENT' });
    const record = await post('/api/v1/records', { resource_id: ada.id, engagement_id: visit.id, entry_date: '2025-02-01', classification_code: 'I10' });
    expect(record.statusCode).toBe(201);
    expect(record.json()).toMatchObject({ entry_date: '2025-02-01', classification_code: 'I10' });
    expect((await get(`/api/v1/records?resource_id=${ada.id}`)).json<Page>().total).toBe(1);
    expect((await get(`/api/v1/engagements?resource_id=${ada.id}&status=CLOSED`)).json<Page>().total).toBe(1);
    expect((await get(`/api/v1/records?resource_id=${ada.id}&notes=x&id=y`)).json<Page>().total).toBe(1); // not filters: ignored

    const code = await post('/api/v1/records', { resource_id: ada.id, classification_code: 'Z99.9' });
    expect(code.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.classification_code', value: 'Z99.9' }] });
    const department = await post('/api/v1/engagements', { resource_id: ada.id, department_code: 'NOPE', engagement_type: 'INPATIENT' });
    expect(department.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.department_code', value: 'NOPE' }] });
    const nobody = await post('/api/v1/intakes', { resource_id: '00000000-0000-4000-8000-00000000ffff', reason: 'x' });
    expect(nobody.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.resource_id' }] });
    // A record's engagement must be one of the same resource.
    const other = await newResource('REF301');
    const foreign = await post('/api/v1/records', { resource_id: other.id, engagement_id: visit.id });
    expect(foreign.json<Problem>()).toMatchObject({ status: 422, errors: [{ field: 'body.engagement_id', value: visit.id }] });
    expect(foreign.json<Problem>().detail).toContain('belongs to another resource');

    // A resource or engagement with live records is not deleted.
    const refused = await del(`/api/v1/resources/${ada.id}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json<Problem>()).toMatchObject({ errors: [{ field: 'params.id', value: ada.id }] });
    expect((await del(`/api/v1/engagements/${visit.id}`)).statusCode).toBe(409);
  });

  it('documents its API', async () => {
    const paths = Object.keys((await get('/docs/json')).json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/resources', '/api/v1/resources/{resource_id}/addresses/{id}', '/api/v1/orders/{id}/status', '/api/v1/records', '/api/v1/reports/resource-label']));
  });
});
