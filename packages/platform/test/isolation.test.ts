import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { testCluster } from '../src/testing/index.ts';

function credentials(url: string) {
  const parsed = new URL(url);
  return { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
}

async function tryConnect(user: { user: string; password: string }, database: string): Promise<string> {
  const client = new pg.Client({ host: '127.0.0.1', port: testCluster().port, database, ...user });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return 'connected';
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('database isolation', () => {
  const databases = testCluster().databases;
  const services = Object.keys(databases);

  // Databases by the registry's name (the key in snake_case), never by the key itself.
  const stateful = loadRegistry(undefined, {}).services.filter((s) => s.stateful);

  it('covers every stateful service', () => {
    expect(services.sort()).toEqual(stateful.map((s) => s.key).sort());
  });

  for (const { key: service, database } of stateful) {
    it(`${service}'s roles reach its own database and no other`, async () => {
      const app = credentials(databases[service]!.appUrl);
      const owner = credentials(databases[service]!.ownerUrl);
      expect(await tryConnect(app, database)).toBe('connected');
      expect(await tryConnect(owner, database)).toBe('connected');
      for (const other of stateful.filter((s) => s.key !== service)) {
        expect(await tryConnect(app, other.database)).toMatch(/^42501: permission denied for database/);
        expect(await tryConnect(owner, other.database)).toMatch(/^42501: permission denied for database/);
      }
      for (const maintenance of ['postgres', 'template1']) {
        expect(await tryConnect(app, maintenance)).toMatch(/^42501: permission denied for database/);
        expect(await tryConnect(owner, maintenance)).toMatch(/^42501: permission denied for database/);
      }
    });
  }

  it('gives the app role DML only: it can write rows but not change the schema', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: testCluster().port, database: 'masterdata', ...credentials(databases.masterdata!.appUrl) });
    await client.connect();
    try {
      await client.query('BEGIN');
      const inserted = await client.query(`INSERT INTO labels (code, label, display_name) VALUES ('TST', 'Tst', 'Test') RETURNING code`);
      expect(inserted.rows).toEqual([{ code: 'TST' }]);
      await client.query('ROLLBACK');
      await expect(client.query('CREATE TABLE sneaky (id int)')).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('DROP TABLE labels')).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('CREATE TABLE public.sneaky (id int)')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.end();
    }
  });

  it('puts each service in a schema named after it, on its roles\' search_path', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: testCluster().port, database: 'core', ...credentials(databases.core!.appUrl) });
    await client.connect();
    try {
      const { rows } = await client.query<{ search_path: string; table_schema: string }>(
        `SELECT current_setting('search_path') AS search_path, table_schema FROM information_schema.tables WHERE table_name = 'resources'`,
      );
      expect(rows).toEqual([{ search_path: 'core', table_schema: 'core' }]);
    } finally {
      await client.end();
    }
  });
});
