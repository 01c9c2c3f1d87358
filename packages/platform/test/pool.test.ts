import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createDatabase } from '../src/db.ts';
import { superuserClient, useTestDatabase } from '../src/testing/index.ts';

// Backends PostgreSQL runs for one application name (each is a process of ~15 MB).
async function backends(applicationName: string): Promise<number> {
  const admin = await superuserClient();
  try {
    const { rows } = await admin.query<{ count: number }>('select count(*)::int as count from pg_stat_activity where application_name = $1', [applicationName]);
    return rows[0]!.count;
  } finally {
    await admin.end();
  }
}

describe('a service pool', async () => {
  const database = await useTestDatabase('masterdata');

  it('gives the connections a burst opened back to PostgreSQL soon after, and keeps the one still in use', { timeout: 30_000 }, async () => {
    const applicationName = `pool-${randomBytes(4).toString('hex')}`;
    const db = createDatabase<unknown>(database.appUrl, { applicationName });
    try {
      await Promise.all(Array.from({ length: 4 }, () => sql`select pg_sleep(0.2)`.execute(db)));
      expect(await backends(applicationName)).toBe(4);
      // A poller using one connection every 250 ms keeps that one; pg's usual 10–30 s idle timeouts would keep all four past this.
      const deadline = Date.now() + 8_000;
      let open = 4;
      while (Date.now() < deadline && open > 1) {
        await sql`select 1`.execute(db);
        await new Promise((resolve) => setTimeout(resolve, 250));
        open = await backends(applicationName);
      }
      expect(open).toBe(1);
    } finally {
      await db.destroy();
    }
  });
});
