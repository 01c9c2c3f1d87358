import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { useTestDatabase } from '@archipelago/platform/testing';
import { buildApp } from '../src/app.ts';
import type { MasterdataDatabase } from '../src/database.ts';
import { seed } from '../src/seed.ts';

describe('masterdata labels', async () => {
  const database = await useTestDatabase('masterdata');
  await withOwnerDatabase(database, seed);
  await withOwnerDatabase(database, seed); // a seed is safe to run on every start
  const app = await buildApp({ db: database.db as Kysely<MasterdataDatabase>, logger: false });
  afterAll(() => app.close());

  it('lists the four seeded labels in display order', async () => {
    const response = await app.inject({ url: '/api/v1/labels' });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ items: { code: string }[]; total: number }>();
    expect(body.total).toBe(4);
    expect(body.items.map((l) => l.code)).toEqual(['MR', 'MRS', 'MISS', 'DR']);
  });

  it('pages with limit and offset', async () => {
    const body = (await app.inject({ url: '/api/v1/labels?limit=2&offset=2' })).json<{ items: { code: string }[]; total: number }>();
    expect(body).toMatchObject({ total: 4, limit: 2, offset: 2 });
    expect(body.items.map((l) => l.code)).toEqual(['MISS', 'DR']);
  });

  it('reads one label and 404s an unknown one', async () => {
    expect((await app.inject({ url: '/api/v1/labels/DR' })).json()).toMatchObject({ code: 'DR', label: 'Dr.', display_name: 'Doctor' });
    expect((await app.inject({ url: '/api/v1/labels/ZZ' })).json()).toMatchObject({ status: 404, detail: 'Label ZZ does not exist' });
  });

  it('rejects bad query input naming the field', async () => {
    const response = await app.inject({ url: "/api/v1/labels?limit=9999&offset=-1" });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ errors: { field: string }[] }>().errors.map((e) => e.field).sort()).toEqual(['querystring.limit', 'querystring.offset']);
    const injection = await app.inject({ url: `/api/v1/labels/${encodeURIComponent("MR' OR '1'='1")}` });
    expect(injection.statusCode).toBe(400);
  });

  it('is ready while its database answers', async () => {
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
  });
});
