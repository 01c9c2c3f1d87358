import type { IncomingMessage } from 'node:http';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { remoteAuthSources } from '@archipelago/platform/auth';
import { freePort } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { notificationTestApp } from '../../notification/test/notification-app.ts';
import { buildApp } from '../src/app.ts';
import { gatewayUpstreams } from '../src/upstreams.ts';

// Two real notification instances (one database) behind one gateway: HTTP requests are spread
// over both and survive one of them going away; a WebSocket stays on the instance it reached.
describe('the gateway in front of two instances', async () => {
  const { apps, identity } = await notificationTestApp({ instances: 2 });
  const urls = [await apps[0]!.listen({ host: '127.0.0.1', port: 0 }), await apps[1]!.listen({ host: '127.0.0.1', port: 0 })];
  const requests = [0, 0];
  const upgrades = [0, 0];
  apps.forEach((app, i) => {
    app.server.on('request', (request: IncomingMessage) => request.url?.startsWith('/api/') && requests[i]!++);
    app.server.on('upgrade', () => upgrades[i]!++);
  });
  const dead = `http://127.0.0.1:${await freePort()}`;
  const env = { IAM_URL: identity.url, NOTIFICATION_URL: urls.join(','), CORE_URL: dead, MASTERDATA_URL: dead, REPORTING_URL: dead };
  const gateway = await buildApp({
    logger: false, upstreams: gatewayUpstreams(loadRegistry(undefined, {}), env), credentials: testCredentials('gateway'),
    authSources: remoteAuthSources(identity.url, { credentials: testCredentials('gateway') }),
  });
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 });
  const user = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const headers = { authorization: `Bearer ${await identity.token(user)}` };
  const sockets: Socket[] = [];
  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await gateway.close();
  });

  const open = async () => {
    const socket = connect(gatewayUrl, { path: '/socket.io', transports: ['websocket'], auth: { token: await identity.token(user) }, reconnection: false, forceNew: true });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('badge:update', () => resolve());
      socket.once('connect_error', reject);
    });
    return socket;
  };

  it('keeps each WebSocket on the instance it reached, and puts the next one on the other instance', async () => {
    const first = await open();
    expect(upgrades.toSorted()).toEqual([0, 1]);
    const second = await open(); // the first still holds its instance: the other one is less busy
    expect(upgrades).toEqual([1, 1]);
    // Deliveries arrive over the established sockets, with no new upgrade anywhere: each stays where it is.
    const delivered = [first, second].map((socket) => new Promise<string>((resolve) => socket.once('notification:new', (n: { id: string }) => resolve(n.id))));
    const admin = { authorization: `Bearer ${await identity.token(identity.user({ roles: ['admin'], departmentCode: 'ADMIN' }))}`, 'content-type': 'application/json' };
    const created = await fetch(`${gatewayUrl}/api/v1/notifications`, {
      method: 'POST', headers: admin, body: JSON.stringify({ department_code: 'LAB', notification_type: 'NOTE', title: 't', message: 'm' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(await Promise.all(delivered)).toEqual([id, id]);
    for (const socket of [first, second]) expect(socket.io.engine.transport.name).toBe('websocket');
    expect(upgrades).toEqual([1, 1]);
  });

  it('refuses the polling transport: there is nothing to keep sticky', async () => {
    const polling = await fetch(`${gatewayUrl}/socket.io/?EIO=4&transport=polling`);
    expect(polling.status).toBe(400);
  });

  it('spreads requests over both, skips one that is down, and answers 503 with Retry-After once both are', async () => {
    const before = [...requests];
    for (let i = 0; i < 6; i++) expect((await fetch(`${gatewayUrl}/api/v1/notifications`, { headers })).status).toBe(200);
    expect(requests[0]! - before[0]!).toBeGreaterThan(0);
    expect(requests[1]! - before[1]!).toBeGreaterThan(0);

    for (const socket of sockets) socket.disconnect();
    await apps[0]!.close();
    for (let i = 0; i < 6; i++) expect((await fetch(`${gatewayUrl}/api/v1/notifications`, { headers })).status).toBe(200);
    await apps[1]!.close();
    const down = await fetch(`${gatewayUrl}/api/v1/notifications`, { headers });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('2');
  });
});
