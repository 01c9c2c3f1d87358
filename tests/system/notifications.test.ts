import { peerUrls } from '@archipelago/platform';
import { afterAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { peerUrlVariable } from '@archipelago/platform';
import { loadRegistry } from '@archipelago/registry';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import type { Kysely } from 'kysely';
import { buildApp as buildGateway } from '../../services/gateway/src/app.ts';
import { gatewayUpstreams } from '../../services/gateway/src/upstreams.ts';
import { coreTestApp } from '../../services/core/test/core-app.ts';
import { buildApp as buildNotification } from '../../services/notification/src/app.ts';
import type { NotificationDatabase } from '../../services/notification/src/database.ts';

const ORDERS = ['orders:read', 'orders:write'];

// The case over real sockets through the gateway: an order created in core reaches the
// sockets of its department's members (and no one else's) as notification:new.
describe('notifications through the gateway', async () => {
  const { server: core, identity } = await coreTestApp({
    roles: { admin: [...ORDERS, 'notifications:read', 'notifications:write'], staff: [...ORDERS, 'notifications:read'] },
  });
  const coreUrl = await core.listen({ host: '127.0.0.1', port: 0 });
  const database = await useTestDatabase('notification');
  const notification = await buildNotification({
    db: database.db as Kysely<NotificationDatabase>, logger: false, databaseUrl: database.appUrl, env: { LOOKUP_RECONCILE_AT: 'off' },
    credentials: testCredentials('notification'), peer: peerUrls('notification', { iam: identity.url, core: coreUrl, masterdata: coreUrl }),
    // Sessions asked about on every handshake, so a sign-out is seen at the next one.
    auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials: testCredentials('notification') }), sessionTtlMs: 0 }),
  });
  const notificationUrl = await notification.listen({ host: '127.0.0.1', port: 0 });
  const registry = loadRegistry(undefined, {});
  const env = { ...Object.fromEntries(registry.services.map((s) => [peerUrlVariable(s.key), coreUrl])), IAM_URL: identity.url, NOTIFICATION_URL: notificationUrl };
  const gateway = await buildGateway({
    logger: false,
    upstreams: gatewayUpstreams(registry, env),
    authSources: remoteAuthSources(identity.url, { credentials: testCredentials('gateway') }),
    credentials: testCredentials('gateway'),
  });
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 });
  const sockets: Socket[] = [];
  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await gateway.close();
    await notification.close();
  });

  const member = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const outsider = identity.user({ roles: ['staff'], departmentCode: 'RADIO' });
  const listen = async (token: string) => {
    const socket = connect(gatewayUrl, { path: '/socket.io', transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
    sockets.push(socket);
    const received: { title: string; reference_id: string }[] = [];
    socket.on('notification:new', (n: { title: string; reference_id: string }) => received.push(n));
    // Every event, in the order it came.
    const log: [string, unknown][] = [];
    socket.onAny((name: string, payload: unknown) => log.push([name, payload]));
    const badge = new Promise((resolve) => socket.once('badge:update', resolve));
    const outcome = await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (error: Error & { data?: { status?: number } }) => resolve(`refused (${error.data?.status ?? '?'}): ${error.message}`));
    });
    if (outcome === 'connected') await badge;
    return { outcome, received, log };
  };

  it('delivers notification:new after POST /api/v1/orders to a member of its department, not to another department', async () => {
    const [mine, theirs] = [await listen(await identity.token(member)), await listen(await identity.token(outsider))];
    expect([mine.outcome, theirs.outcome]).toEqual(['connected', 'connected']);
    const response = await fetch(`${gatewayUrl}/api/v1/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await identity.token(identity.user({ roles: ['admin'], departmentCode: 'LAB' }))}`, 'content-type': 'application/json' },
      body: JSON.stringify({ item_name: 'Troponin', department_code: 'LAB' }),
    });
    expect(response.status).toBe(201);
    const order = (await response.json()) as { id: string; order_code: string };
    for (let i = 0; i < 400 && !mine.received.some((n) => n.reference_id === order.id); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(mine.received.filter((n) => n.reference_id === order.id).map((n) => n.title)).toEqual([`New order ${order.order_code}`]);

    // The feed through the gateway has it too; the other department's socket got nothing of it.
    const feed = await fetch(`${gatewayUrl}/api/v1/notifications`, { headers: { authorization: `Bearer ${await identity.token(member)}` } });
    expect(((await feed.json()) as { items: { reference_id: string }[] }).items.map((n) => n.reference_id)).toContain(order.id);
    expect(theirs.received.map((n) => n.reference_id)).not.toContain(order.id);
  });

  it("gives each member's socket an order's notification:new and right after it that member's own badge:update", async () => {
    const [one, two] = [identity.user({ roles: ['staff'], departmentCode: 'LAB' }), identity.user({ roles: ['staff'], departmentCode: 'LAB' })];
    const headers = { authorization: `Bearer ${await identity.token(identity.user({ roles: ['admin'], departmentCode: 'LAB' }))}`, 'content-type': 'application/json' };
    const [first, second] = [await listen(await identity.token(one)), await listen(await identity.token(two))];
    // The second member has one more unread than the first: their own.
    const own = await fetch(`${gatewayUrl}/api/v1/notifications`, { method: 'POST', headers, body: JSON.stringify({ user_id: two.id, notification_type: 'NOTE', title: 'Yours', message: 'm' }) });
    expect(own.status, await own.clone().text()).toBe(201);
    const response = await fetch(`${gatewayUrl}/api/v1/orders`, { method: 'POST', headers, body: JSON.stringify({ item_name: 'Ferritin', department_code: 'LAB' }) });
    expect(response.status).toBe(201);
    const order = (await response.json()) as { id: string };
    const afterOrder = (log: [string, unknown][]) => log.slice(log.findIndex(([name, n]) => name === 'notification:new' && (n as { reference_id: string }).reference_id === order.id));
    for (let i = 0; i < 400 && [first, second].some((client) => !client.received.some((n) => n.reference_id === order.id) || afterOrder(client.log).length < 2); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    const counts = [];
    for (const [i, user] of [one, two].entries()) {
      const unread = await fetch(`${gatewayUrl}/api/v1/notifications/unread-count`, { headers: { authorization: `Bearer ${await identity.token(user)}` } });
      counts.push(await unread.json());
      expect(afterOrder([first, second][i]!.log).map(([name, payload]) => (name === 'badge:update' ? [name, payload] : [name]))).toEqual([['notification:new'], ['badge:update', counts[i]]]);
    }
    expect(counts[1]).toMatchObject({ total: (counts[0] as { total: number }).total + 1 });
  });

  it('refuses a bad token at the handshake through the gateway', async () => {
    expect((await listen('nope')).outcome).toMatch(/^refused/);
  });

  it('refuses an expired token at the handshake through the gateway', async () => {
    const expired = await identity.token(member, { expiresAt: new Date(Date.now() - 60_000) });
    expect((await listen(expired)).outcome).toMatch(/^refused \(401\)/);
  });

  it('refuses a revoked token (its session signed out) at the next handshake through the gateway', async () => {
    const leaving = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
    const token = await identity.token(leaving);
    const before = await listen(token);
    expect(before.outcome).toBe('connected');
    identity.signOut(leaving);
    expect((await listen(token)).outcome).toMatch(/^refused \(401\)/);
  });
});
