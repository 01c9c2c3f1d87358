import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { LookupDefinition } from '@archipelago/registry';
import type { EventEnvelope } from '../src/events/index.ts';
import { lookupProjection, reconcileLookup, startLookupSync, type ExportReader, type MasterRow } from '../src/lookups/index.ts';
import { feedTransport } from '../src/events/index.ts';
import { testCredentials } from '../src/testing/credentials.ts';
import { useTestDatabase } from '../src/testing/index.ts';

const labels: LookupDefinition = {
  table: 'labels_lookup', from: 'masterdata', entity: 'label', key: 'code',
  columns: { label: 'text', display_name: 'text', abbreviation: 'text', display_order: 'integer', is_active: 'boolean' },
};

const master = (code: string, version: number, changes: Partial<Record<string, unknown>> = {}): MasterRow => ({
  id: `00000000-0000-4000-8000-${String(version).padStart(6, '0')}${code.padEnd(6, '0').slice(0, 6).replace(/[^0-9a-f]/gi, '0')}`,
  code, label: `${code} v${version}`, display_name: code, abbreviation: null, display_order: 1, is_active: true, version, ...changes,
});

const event = (type: 'created' | 'updated' | 'deleted', row: MasterRow): EventEnvelope => ({
  id: crypto.randomUUID(), type: `label.${type}`, source: 'masterdata',
  aggregate: { type: 'label', id: String(row.code), version: row.version },
  occurredAt: new Date().toISOString(), payload: row, metadata: {}, position: '1-1',
});

// Core's real lookup tables (its migration), written by the platform's projection and reconciliation.
describe('lookup tables', async () => {
  const core = await useTestDatabase('core');
  const db = core.db;
  const project = lookupProjection([labels]);
  // One event per transaction, as a consumer applies them after a failed batch…
  const apply = (...events: EventEnvelope[]) => db.transaction().execute(async (trx) => {
    for (const e of events) await project(trx, [e]);
  });
  // …and all in one batch, as it applies them normally.
  const applyBatch = (...events: EventEnvelope[]) => db.transaction().execute((trx) => project(trx, events));
  const row = async (code: string) =>
    (await sql<{ label: string; is_active: boolean; source_version: number }>`SELECT label, is_active, source_version FROM labels_lookup WHERE code = ${code}`.execute(db)).rows[0];
  const exportOf = (rows: MasterRow[]): ExportReader => async function* read() {
    yield rows.slice(0, 2);
    yield rows.slice(2);
  };

  it('applies events guarded by version: a late, replayed or reordered one changes nothing', async () => {
    await apply(event('created', master('A', 1)), event('updated', master('A', 3)), event('updated', master('A', 2)), event('updated', master('A', 3, { label: 'replayed' })));
    expect(await row('A')).toEqual({ label: 'A v3', is_active: true, source_version: 3 });
  });

  it('ends in the same state when the same events come in one batch', async () => {
    await applyBatch(event('created', master('B', 1)), event('updated', master('B', 3)), event('updated', master('B', 2)), event('deleted', master('C', 2)), event('created', master('C', 1)));
    expect(await row('B')).toEqual({ label: 'B v3', is_active: true, source_version: 3 });
    expect(await row('C')).toBeUndefined();
    await applyBatch(event('created', master('C', 1)), event('created', master('C', 4, { label: 'revived' })), event('deleted', master('C', 3)));
    expect(await row('C')).toMatchObject({ label: 'revived', source_version: 4 });
  });

  it('keeps inactive rows, so old references still resolve', async () => {
    await apply(event('updated', master('A', 4, { is_active: false })));
    expect(await row('A')).toMatchObject({ is_active: false, source_version: 4 });
  });

  it('removes deleted rows; an older event cannot bring them back, a newer revival can', async () => {
    await apply(event('created', master('D', 1)), event('deleted', master('D', 2)), event('updated', master('D', 1)));
    expect(await row('D')).toBeUndefined();
    await apply(event('created', master('D', 3, { label: 'revived' })));
    expect(await row('D')).toMatchObject({ label: 'revived', source_version: 3 });
    await apply(event('deleted', master('D', 2))); // a late deletion older than the revival
    expect(await row('D')).toMatchObject({ label: 'revived' });
  });

  it('reports drift (missing, stale, changed by hand, extra) without changing anything, then repairs it', async () => {
    await apply(event('created', master('SAME', 1)), event('created', master('HAND', 1)), event('created', master('OLD', 1)), event('created', master('GONE', 1)));
    await sql`UPDATE labels_lookup SET label = 'edited by hand' WHERE code = 'HAND'`.execute(db);
    const truth = [master('A', 4, { is_active: false }), master('B', 3), master('C', 4, { label: 'revived' }), master('D', 3, { label: 'revived' }), master('SAME', 1), master('HAND', 1), master('OLD', 2), master('NEW', 1)];
    const drift = await reconcileLookup(db, labels, exportOf(truth), { repair: false });
    expect(drift).toMatchObject({ lookup: 'labels_lookup', masterRows: 8, missing: ['NEW'], stale: ['HAND', 'OLD'], extra: ['GONE'], repaired: false });
    expect(await row('HAND')).toMatchObject({ label: 'edited by hand' });

    const repaired = await reconcileLookup(db, labels, exportOf(truth), { repair: true });
    expect(repaired).toMatchObject({ missing: ['NEW'], stale: ['HAND', 'OLD'], extra: ['GONE'], repaired: true });
    expect(await row('HAND')).toMatchObject({ label: 'HAND v1' });
    expect(await row('GONE')).toBeUndefined();
    expect(await reconcileLookup(db, labels, exportOf(truth), { repair: false })).toMatchObject({ missing: [], stale: [], extra: [] });
    const recorded = await sql`SELECT master_rows, missing, stale, extra, repaired FROM lookup_reconciliations WHERE lookup = 'labels_lookup'`.execute(db);
    expect(recorded.rows).toEqual([{ master_rows: 8, missing: 0, stale: 0, extra: 0, repaired: false }]);
  });

  it('never lets an older export overwrite a newer copy', async () => {
    await apply(event('updated', master('SAME', 5, { label: 'newer than the export' })));
    const report = await reconcileLookup(db, labels, exportOf([master('SAME', 1)]), { repair: true });
    expect(report.stale).toEqual([]);
    expect(await row('SAME')).toMatchObject({ label: 'newer than the export', source_version: 5 });
  });

  it('refuses to start when a lookup table differs from its declaration (a column more, a type changed)', async () => {
    const start = startLookupSync({
      service: 'core', db, lookups: [{ ...labels, columns: { ...labels.columns, colour: 'text' } }, { ...labels, table: 'regions_lookup', columns: { name: 'integer', zone: 'text', is_active: 'boolean' } }],
      transport: feedTransport({ urlOf: () => 'http://127.0.0.1:9', credentials: testCredentials('core') }), readExport: exportOf([]),
    });
    await expect(start).rejects.toThrow("core's lookup tables do not match the registry: labels_lookup has other columns or types than declared; regions_lookup has other columns or types than declared");
  });

  it('fills an empty table from the export when it starts', async () => {
    const regions: LookupDefinition = { table: 'regions_lookup', from: 'masterdata', entity: 'region', key: 'code', columns: { name: 'text', zone: 'text', is_active: 'boolean' } };
    const sync = await startLookupSync({
      service: 'core', db, lookups: [regions],
      transport: feedTransport({ urlOf: () => 'http://127.0.0.1:9', credentials: testCredentials('core') }), // no producer: events cannot come, the snapshot must
      readExport: async function* read() {
        yield [{ id: crypto.randomUUID(), code: 'CA', name: 'California', zone: 'West', is_active: true, version: 2 }];
      },
    });
    try {
      for (let i = 0; i < 100 && (await sql`SELECT 1 FROM regions_lookup`.execute(db)).rows.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await sql`SELECT code, name, zone, source_version FROM regions_lookup`.execute(db)).rows).toEqual([{ code: 'CA', name: 'California', zone: 'West', source_version: 2 }]);
    } finally {
      await sync.stop();
    }
  });
});
