import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createHttpServer, peerUrls } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { composeService, type ConsumerHandlers } from '@archipelago/platform/compose';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import type { EventEnvelope } from '@archipelago/platform/events';
import { alignLookupTables } from '@archipelago/platform/lookups';
import { useTestDatabase } from '@archipelago/platform/testing';
import { asPrincipal, OPERATOR, testCredentials } from '@archipelago/platform/testing/credentials';
import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';
import { loadRegistry, serviceDefinitions, type ServiceDefinition } from '@archipelago/registry';
import { buildApp as buildMasterdata } from '../../services/masterdata/src/app.ts';
import type { MasterdataDatabase } from '../../services/masterdata/src/database.ts';
import { seed as seedMasterdata } from '../../services/masterdata/src/seed.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until<T>(what: string, read: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const value = await read();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`never: ${what}`);
}

// Core's declaration with one more lookup and one more consumer, and nothing else: no migration,
// no wiring. The platform must follow from the registry alone.
const core = serviceDefinitions.core;
const changed: Record<string, ServiceDefinition> = {
  ...serviceDefinitions,
  core: {
    ...core,
    events: { ...core.events, consumes: [{ name: 'core.new-labels', from: 'masterdata', mode: 'group', types: ['label.created'] }] },
    lookups: [...core.lookups, { table: 'sub_districts_lookup', from: 'masterdata', entity: 'sub-district', key: 'code', columns: { name: 'text', district_code: 'text', is_active: 'boolean' } }],
  },
};
const registry = loadRegistry(changed, {});

describe('a service composed from its declaration', async () => {
  const identity = await startTestIdentity();
  const master = await useTestDatabase('masterdata');
  await withOwnerDatabase(master, seedMasterdata);
  const masterdataServer = await buildMasterdata({
    db: master.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: master.appUrl, credentials: testCredentials('masterdata'),
    peer: peerUrls('masterdata', { iam: identity.url }), auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('masterdata') }) }),
  });
  const masterdataUrl = await masterdataServer.listen({ host: '127.0.0.1', port: 0 });
  const masterdata = asUser(masterdataServer, await identity.token(identity.user()));
  afterAll(async () => {
    await masterdataServer.close();
    await identity.close();
  });
  const coreDb = await useTestDatabase('core');
  const columnsOf = async (table: string) =>
    (await sql<{ column_name: string; data_type: string }>`
      SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table} ORDER BY column_name`.execute(coreDb.db)).rows;

  it("creates a declared lookup's table with the declared column types in the migration step, and re-creates it when it drifts", async () => {
    expect(await columnsOf('sub_districts_lookup')).toEqual([]);
    const align = () => withOwnerDatabase(coreDb, (db) => alignLookupTables(db, registry.service('core')));
    expect((await align()).find((a) => a.table === 'sub_districts_lookup')).toEqual({ table: 'sub_districts_lookup', action: 'created' });
    expect(await columnsOf('sub_districts_lookup')).toEqual([
      { column_name: 'code', data_type: 'text' },
      { column_name: 'district_code', data_type: 'text' },
      { column_name: 'is_active', data_type: 'boolean' },
      { column_name: 'master_id', data_type: 'uuid' },
      { column_name: 'name', data_type: 'text' },
      { column_name: 'source_version', data_type: 'bigint' },
      { column_name: 'synced_at', data_type: 'timestamp with time zone' },
    ]);
    expect((await align()).map((a) => a.action)).toEqual(['kept', 'kept', 'kept', 'kept', 'kept', 'kept']);
    await withOwnerDatabase(coreDb, (db) => sql`ALTER TABLE sub_districts_lookup ALTER COLUMN name TYPE varchar(200)`.execute(db));
    expect((await align()).find((a) => a.table === 'sub_districts_lookup')?.action).toBe('recreated');
    expect((await columnsOf('sub_districts_lookup')).find((c) => c.column_name === 'name')).toEqual({ column_name: 'name', data_type: 'text' });
  });

  it('follows a lookup and a consumer added to the registry alone; the consumer gets only its declared types, typed', async () => {
    const received: EventEnvelope[] = [];
    const app = await createHttpServer({ service: 'core', logger: false, credentials: testCredentials('core') });
    const composed = await composeService(app, {
      service: 'core', registry,
      deps: { db: coreDb.db, logger: false, databaseUrl: coreDb.appUrl, credentials: testCredentials('core'), env: { LOOKUP_RECONCILE_AT: 'off' }, peer: peerUrls('core', { masterdata: masterdataUrl, iam: identity.url }) },
      // (Typed against the process's registry, in which core declares no consumer: any name goes.)
      handlers: { 'core.new-labels': async (_trx: unknown, events: readonly EventEnvelope[]) => void received.push(...events) },
    });
    afterAll(() => app.close());

    // The snapshot from masterdata's export, then its events.
    const row = (code: string) => sql<{ name: string; district_code: string }>`SELECT name, district_code FROM sub_districts_lookup WHERE code = ${code}`.execute(coreDb.db);
    const seeded = await until('the snapshot', async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM sub_districts_lookup`.execute(coreDb.db)).rows[0]!.n || undefined);
    expect(seeded).toBeGreaterThan(0);
    expect((await masterdata.inject({ method: 'POST', url: '/api/v1/sub-districts', payload: { code: 'US-CA-LA-NEW', name: 'New Town', district_code: 'US-CA-LA' } })).statusCode).toBe(201);
    expect(await until('the new sub-district', async () => (await row('US-CA-LA-NEW')).rows[0])).toEqual({ name: 'New Town', district_code: 'US-CA-LA' });
    // Its codes are references, checked against the copy.
    await expect(composed.references.check([{ field: 'body.sub_district_code', value: 'US-CA-LA-NEW', ref: 'sub-district' }])).resolves.toBeUndefined();
    await expect(composed.references.check([{ field: 'body.sub_district_code', value: 'NOPE', ref: 'sub-district' }])).rejects.toMatchObject({ code: 'UNPROCESSABLE_REFERENCE' });

    // label.updated and region.* pass this consumer by; only label.created reaches its handler.
    expect((await masterdata.inject({ method: 'PATCH', url: '/api/v1/labels/MR', payload: { label: 'Mr (again)' } })).statusCode).toBe(200);
    expect((await masterdata.inject({ method: 'PATCH', url: '/api/v1/regions/US-CA', payload: { name: 'Golden State' } })).statusCode).toBe(200);
    expect((await masterdata.inject({ method: 'POST', url: '/api/v1/labels', payload: { code: 'SIR', label: 'Sir', display_name: 'Sir' } })).statusCode).toBe(201);
    await until('the new label', async () => (received.some((event) => event.aggregate.id === 'SIR') ? true : undefined));
    const stats = (await asPrincipal(app, OPERATOR).inject({ url: '/internal/v1/consumers' })).json<{ consumers: { name: string; mode: string; processed: number }[] }>().consumers;
    const consumer = stats.find((c) => c.name === 'core.new-labels')!;
    expect(consumer.mode).toBe('group');
    expect(consumer.processed).toBeGreaterThan(received.length); // it saw the others, and handed them on to nobody
    expect(new Set(received.map((event) => event.type))).toEqual(new Set(['label.created']));
  });

  it('types a declared consumer\'s events by the producer\'s payload schemas', () => {
    type Orders = ConsumerHandlers<'notification', unknown>['notification.orders'];
    type Event = Parameters<Orders>[1][number];
    expectTypeOf<Event['type']>().toEqualTypeOf<'order.created' | 'order.status-changed'>();
    expectTypeOf<Extract<Event, { type: 'order.created' }>['payload']['order_code']>().toEqualTypeOf<string>();
    expectTypeOf<Extract<Event, { type: 'order.status-changed' }>['payload']['previous_status']>().toEqualTypeOf<string>();
    expectTypeOf<keyof ConsumerHandlers<'core', unknown>>().toEqualTypeOf<never>(); // core declares no consumer of its own
  });
});
