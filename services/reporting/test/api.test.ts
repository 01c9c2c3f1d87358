import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { superuserClient, testCredentials, useTestDatabase, type TestDatabase } from '@archipelago/platform/testing';
import { asUser, startTestIdentity, type TestIdentity } from '@archipelago/platform/testing/identity';
import { useTestReporting } from '@archipelago/platform/testing/reporting';
import { peerUrls, type HttpServer } from '@archipelago/platform';
import { buildApp } from '../src/app.ts';
import type { ReportingDatabase } from '../src/database.ts';

let app: HttpServer;
let identity: TestIdentity;
let reporting: TestDatabase;

async function run(database: string, text: string, values: unknown[] = []): Promise<void> {
  const client = await superuserClient(database);
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  const core = await useTestDatabase('core');
  const iam = await useTestDatabase('iam');
  const masterdata = await useTestDatabase('masterdata');
  reporting = await useTestDatabase('reporting');
  const userId = '5f0b3a0e-0000-4000-8000-000000000001';
  await run(iam.name, `INSERT INTO iam.users (id, email, display_name, password_hash) VALUES ($1, 'clerk@example.test', 'Clara Clerk', 'hash')`, [userId]);
  await run(masterdata.name, `INSERT INTO masterdata.departments (code, name) VALUES ('RPT-D1', 'Records Department'); INSERT INTO masterdata.labels (code, label, display_name) VALUES ('RPTL', 'Reporting Label', 'RL'); INSERT INTO masterdata.regions (code, name, zone) VALUES ('RPTR', 'Northern Reach', 'NORTH')`);
  await run(core.name, `INSERT INTO core.orders (order_code, item_name, department_code, created_by) VALUES ('ORD-2026-900001', 'Ledger', 'RPT-D1', $1)`, [userId]);
  await run(core.name, `WITH r AS (INSERT INTO core.resources (reference_number, label_code, first_name, last_name) VALUES ('RPT001', 'RPTL', 'Ada', 'Lovelace') RETURNING id)
                        INSERT INTO core.resource_addresses (resource_id, address_line1, region_code) SELECT id, '1 Main St', 'RPTR' FROM r`);
  const replication = await useTestReporting(reporting, [core, iam, masterdata]);
  await replication.sync();
  identity = await startTestIdentity({ roles: { admin: ['reporting:read'], viewer: ['orders:read', 'reports:read'] } });
  const auth = createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('reporting') }) });
  app = await buildApp({ db: reporting.db as Kysely<ReportingDatabase>, logger: false, credentials: testCredentials('reporting'), peer: peerUrls('reporting', { iam: identity.url }), auth, maxRetainedBytes: 1024 ** 3 });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await identity?.close();
});

// Replication is asynchronous: polls the report until `check` holds (the test's timeout bounds it).
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('reporting API', () => {
  it('orders joined with their department (masterdata) and creator (iam): three services in one SQL report', async () => {
    const admin = asUser(app, await identity.token(identity.user({ roles: ['admin'] })));
    const body = await eventually(
      async () => (await admin.inject({ url: '/api/v1/reporting/reports/orders-with-department-and-creator' })).json<{ items: Record<string, unknown>[]; total: number }>(),
      (b) => b.items?.some((i) => i.created_by_name !== null && i.department_name !== null) ?? false,
    );
    expect(body.items.find((i) => i.order_code === 'ORD-2026-900001')).toMatchObject({ department_name: 'Records Department', created_by_name: 'Clara Clerk' });
    expect(body.total).toBe(body.items.length);
  });

  it('resources with their label and region names', async () => {
    const admin = asUser(app, await identity.token(identity.user({ roles: ['admin'] })));
    const body = await eventually(
      async () => (await admin.inject({ url: '/api/v1/reporting/reports/resources-with-label-and-regions?limit=10' })).json<{ items: Record<string, unknown>[] }>(),
      (b) => b.items?.some((i) => i.reference_number === 'RPT001' && (i.region_names as string[]).length > 0 && i.label_name !== null) ?? false,
    );
    expect(body.items.find((i) => i.reference_number === 'RPT001')).toMatchObject({ label_name: 'Reporting Label', region_names: ['Northern Reach'] });
  });

  it('needs reporting:read: 401 without a token, 403 with another permission', async () => {
    expect((await app.inject({ url: '/api/v1/reporting/status' })).statusCode).toBe(401);
    const viewer = asUser(app, await identity.token(identity.user({ roles: ['viewer'] })));
    expect((await viewer.inject({ url: '/api/v1/reporting/status' })).statusCode).toBe(403);
    expect((await viewer.inject({ url: '/api/v1/reporting/reports/orders-with-department-and-creator' })).statusCode).toBe(403);
  });

  it('status: one streaming subscription per source, lag, retained WAL, errors and conflicts', async () => {
    const admin = asUser(app, await identity.token(identity.user({ roles: ['admin'] })));
    const response = await admin.inject({ url: '/api/v1/reporting/status' });
    expect(response.statusCode).toBe(200);
    const { subscriptions } = response.json<{ subscriptions: { service: string; enabled: boolean; retainedBytes: number; applyErrors: number; conflicts: number }[] }>();
    expect(subscriptions.map((s) => s.service).sort()).toEqual(['core', 'iam', 'masterdata']);
    for (const s of subscriptions) expect(s).toMatchObject({ enabled: true, conflicts: 0 });
    expect(subscriptions.every((s) => s.retainedBytes >= 0)).toBe(true);
  });

  it('asks for the token before it looks at the query: no 400 naming a parameter to a caller without reporting:read', async () => {
    const url = '/api/v1/reporting/reports/orders-with-department-and-creator?limit=-1&offset=99999999999999999999';
    expect((await app.inject({ url })).statusCode).toBe(401);
    expect((await app.inject({ url, headers: { authorization: 'Bearer garbage' } })).statusCode).toBe(401);
    const viewer = asUser(app, await identity.token(identity.user({ roles: ['viewer'] })));
    expect((await viewer.inject({ url })).statusCode).toBe(403);
    expect((await viewer.inject({ url: '/api/v1/reporting/reports/a%00b' })).statusCode).toBe(403);
  });

  it('an unknown report is a 404, a bad limit a 400 naming it', async () => {
    const admin = asUser(app, await identity.token(identity.user({ roles: ['admin'] })));
    expect((await admin.inject({ url: '/api/v1/reporting/reports/no-such-report' })).statusCode).toBe(404);
    const bad = await admin.inject({ url: '/api/v1/reporting/reports/orders-with-department-and-creator?limit=0' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('limit');
  });

  it("the service's own role reads the copies and cannot write them", async () => {
    const client = new pg.Client({ connectionString: reporting.appUrl });
    await client.connect();
    try {
      expect((await client.query('SELECT count(*) FROM core.orders')).rowCount).toBe(1);
      await expect(client.query(`DELETE FROM core.orders`)).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
  });
});
