import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.ts';
import { createHttpServer } from '../src/http.ts';
import { crudExport, crudRepository, crudRoutes, crudService, defineCrudTable, registerExport, type CrudTableType } from '../src/crud/index.ts';
import { useTestDatabase } from '../src/testing/index.ts';
import { asPrincipal, testCredentials } from '../src/testing/credentials.ts';

const widgets = defineCrudTable({
  name: 'widget',
  table: 'widgets',
  title: 'Widget',
  path: '/api/v1/widgets',
  key: 'code',
  columns: { code: Type.String({ pattern: '^[A-Z]{1,5}$' }), size: Type.Integer({ minimum: 0 }), made_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]) },
  optionalOnCreate: ['size', 'made_at'],
  unique: 'code',
  revive: true,
  events: true,
  deletion: 'soft',
});

// The derived Kysely type: a typed query compiles against it (and `size` may be left out).
interface TestDatabase {
  widgets: CrudTableType<typeof widgets>;
}

describe('platform/crud', async () => {
  const database = await useTestDatabase('masterdata'); // any service database with an outbox
  const owner = new pg.Client({ connectionString: database.ownerUrl });
  await owner.connect();
  await owner.query(`CREATE TABLE masterdata.widgets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), code text NOT NULL UNIQUE, size integer NOT NULL DEFAULT 1, made_at timestamptz,
    version integer NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid, updated_by uuid, deleted_at timestamptz)`);
  await owner.end();
  const db = database.db as Kysely<TestDatabase>;
  const rows = crudRepository(db, widgets);
  let refuse = false;
  const service = crudService(db, rows, {
    async beforeWrite(_trx, write) {
      if (refuse) throw new AppError('UNPROCESSABLE_REFERENCE', `no ${String(write.row.code)}`);
    },
  });
  const app = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
  const core = asPrincipal(app, 'core', 'masterdata');
  crudRoutes(app, service);
  crudExport(app, 'masterdata', service);
  const events = async () => (await sql<{ type: string; aggregate_id: string; aggregate_version: number }>`SELECT type, aggregate_id, aggregate_version FROM outbox WHERE aggregate_type = 'widget' ORDER BY id`.execute(database.db)).rows;

  it('derives its schemas: unknown and immutable fields are 400s naming them, timestamps are ISO text', async () => {
    expect((await app.inject({ method: 'POST', url: '/api/v1/widgets', payload: { code: 'A', colour: 'red' } })).statusCode).toBe(400);
    const created = await app.inject({ method: 'POST', url: '/api/v1/widgets', payload: { code: 'A', made_at: '2026-01-02T03:04:05.000Z' } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ code: 'A', size: 1, made_at: '2026-01-02T03:04:05.000Z', version: 1 });
    expect((await rows.find('A'))?.made_at).toBe('2026-01-02T03:04:05.000Z');
    const patched = await app.inject({ method: 'PATCH', url: '/api/v1/widgets/A', payload: { code: 'B' } });
    expect(patched.statusCode).toBe(400);
    const typed = await db.selectFrom('widgets').select(['code', 'size']).where('code', '=', 'A').executeTakeFirstOrThrow();
    expect(typed).toEqual({ code: 'A', size: 1 });
  });

  it('revives a deleted row on create, its version counting on, with an event per change', async () => {
    await app.inject({ method: 'POST', url: '/api/v1/widgets', payload: { code: 'R' } });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/widgets/R' })).statusCode).toBe(204);
    expect((await app.inject({ url: '/api/v1/widgets/R' })).statusCode).toBe(404);
    const revived = await app.inject({ method: 'POST', url: '/api/v1/widgets', payload: { code: 'R', size: 7 } });
    expect(revived.json()).toMatchObject({ code: 'R', size: 7, version: 3 });
    expect((await app.inject({ method: 'POST', url: '/api/v1/widgets', payload: { code: 'R' } })).json()).toMatchObject({ status: 409, errors: [{ field: 'body.code' }] });
    expect((await events()).filter((e) => e.aggregate_id === 'R')).toEqual([
      { type: 'widget.created', aggregate_id: 'R', aggregate_version: 1 },
      { type: 'widget.deleted', aggregate_id: 'R', aggregate_version: 2 },
      { type: 'widget.created', aggregate_id: 'R', aggregate_version: 3 },
    ]);
  });

  it('rolls back a write a hook refuses, with its event', async () => {
    refuse = true;
    try {
      expect((await app.inject({ method: 'PATCH', url: '/api/v1/widgets/R', payload: { size: 9 } })).statusCode).toBe(422);
    } finally {
      refuse = false;
    }
    expect((await rows.find('R'))?.size).toBe(7);
    expect((await events()).filter((e) => e.aggregate_id === 'R')).toHaveLength(3);
  });

  it('exports live rows in byte order of the key, and a full last page says it is the last', async () => {
    const all: string[] = [];
    let after: string | null = null;
    do {
      const page: { items: { code: string }[]; next: string | null } = (await core.inject({ url: `/internal/v1/export/widget?limit=1${after ? `&after=${after}` : ''}` })).json();
      all.push(...page.items.map((item) => item.code));
      after = page.next;
    } while (after);
    expect(all).toEqual(['A', 'R']);
    expect((await core.inject({ url: '/internal/v1/export/widget?limit=2' })).json()).toMatchObject({ next: null });
  });

  it('pages any export the same way: `next` only when another page has rows', async () => {
    const other = await createHttpServer({ service: 'masterdata', logger: false, credentials: testCredentials('masterdata') });
    const keys = ['a', 'b', 'c', 'd'];
    registerExport(other, { source: 'masterdata', entity: 'letter', after: Type.String(), read: async (after, limit) => keys.filter((k) => after === undefined || k > after).slice(0, limit).map((k) => ({ k })), keyOf: (item) => item.k });
    expect((await asPrincipal(other, 'core', 'masterdata').inject({ url: '/internal/v1/export/letter?limit=2' })).json()).toEqual({ items: [{ k: 'a' }, { k: 'b' }], next: 'b' });
    expect((await asPrincipal(other, 'core', 'masterdata').inject({ url: '/internal/v1/export/letter?limit=2&after=b' })).json()).toEqual({ items: [{ k: 'c' }, { k: 'd' }], next: null });
  });
});
