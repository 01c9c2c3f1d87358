import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { peerUrlVariable } from '@archipelago/platform';
import { loadRegistry } from '@archipelago/registry';
import { remoteAuthSources } from '@archipelago/platform/auth';
import { testCredentials } from '@archipelago/platform/testing';
import { buildApp as buildGateway } from '../../services/gateway/src/app.ts';
import { gatewayUpstreams } from '../../services/gateway/src/upstreams.ts';
import { coreTestApp } from '../../services/core/test/core-app.ts';

// The case over real sockets: core stalls, the gateway answers 504 to a create that then
// commits, and the client's retry with the same Idempotency-Key gets the first answer, not a second order.
describe('a retried create through the gateway', async () => {
  const { server: core, identity, user, database } = await coreTestApp();
  const coreUrl = await core.listen({ host: '127.0.0.1', port: 0 });
  const registry = loadRegistry(undefined, {});
  const env = { ...Object.fromEntries(registry.services.map((s) => [peerUrlVariable(s.key), coreUrl])), IAM_URL: identity.url };
  const gateway = await buildGateway({
    logger: false,
    upstreams: gatewayUpstreams(registry, env),
    settings: { upstreamTimeoutMs: 500 },
    authSources: remoteAuthSources(identity.url, { credentials: testCredentials('gateway') }),
    credentials: testCredentials('gateway'),
  });
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 });
  afterAll(async () => {
    await gateway.close();
  });
  const token = await identity.token(user);
  const create = () =>
    fetch(`${gatewayUrl}/api/v1/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'b1f4c1de-0c1a-4a57-9f7e-3a3c3f8f1d20' },
      body: JSON.stringify({ item_name: 'Saline', department_code: 'LAB' }),
    });
  const orders = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM orders WHERE item_name = 'Saline'`.execute(database.db)).rows[0]!.n;

  it('replays the committed order to the retry after a 504, and creates one order', async () => {
    // Core stalls inside the create's transaction, on the order-code counter this test holds.
    const year = new Date().getUTCFullYear();
    await sql`INSERT INTO order_code_counters (year, last_value) VALUES (${year}, 0) ON CONFLICT (year) DO NOTHING`.execute(database.db);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = database.db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM order_code_counters WHERE year = ${year} FOR UPDATE`.execute(trx);
      locked();
      await released;
    });
    await isLocked;

    const first = await create();
    expect(first.status).toBe(504);
    const meanwhile = await create();
    expect(meanwhile.status).toBe(409);
    expect(meanwhile.headers.get('retry-after')).toBe('1');
    expect(await meanwhile.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE', reason: 'in progress' });

    release();
    await holding;
    let retry = await create();
    while (retry.status === 409) { // until the stalled attempt has stored its answer
      await new Promise((resolve) => setTimeout(resolve, 20));
      retry = await create();
    }
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toMatchObject({ item_name: 'Saline', department_code: 'LAB' });
    expect(await orders()).toBe(1);
  });
});
