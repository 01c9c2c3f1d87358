import { afterAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { asUser } from '@archipelago/platform/testing/identity';
import { redisInstalled, startRedis } from '@archipelago/platform/testing/redis';
import { notificationTestApp } from './notification-app.ts';

// Two instances on one database, a tab of the same user on each: what one instance commits
// reaches the other's socket (delivery reads the table; receipts travel by LISTEN).
describe('real time across instances', async () => {
  const { apps, identity, as } = await notificationTestApp({ instances: 2 });
  const urls = [await apps[0]!.listen({ host: '127.0.0.1', port: 0 }), await apps[1]!.listen({ host: '127.0.0.1', port: 0 })];
  const user = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const admin = await as(identity.user({ roles: ['admin'], departmentCode: 'ADMIN' }));
  const sockets: Socket[] = [];

  it("delivers a broadcast created on one instance to a socket on the other, and a read's badge too", async () => {
    const tabs = await Promise.all(
      urls.map(async (url) => {
        const socket = connect(url, { path: '/socket.io', transports: ['websocket'], auth: { token: await identity.token(user) }, reconnection: false, forceNew: true });
        sockets.push(socket);
        const seen = { ids: [] as string[], badges: [] as number[] };
        socket.on('notification:new', (n: { id: string }) => seen.ids.push(n.id));
        socket.on('badge:update', (b: { total: number }) => seen.badges.push(b.total));
        await new Promise<void>((resolve) => socket.once('badge:update', () => resolve()));
        return seen;
      }),
    );
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 400 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(done()).toBe(true);
    };
    const created = await admin.inject({ method: 'POST', url: '/api/v1/notifications', payload: { department_code: 'LAB', notification_type: 'NOTE', title: 't', message: 'm' } });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    await until(() => tabs.every((tab) => tab.ids.includes(id) && tab.badges.at(-1) === 1));

    const reader = await as(user);
    expect((await reader.inject({ method: 'POST', url: `/api/v1/notifications/${id}/read` })).statusCode).toBe(200); // on instance 0
    // Each instance pushes on its own schedule (instance 0 after its commit, instance 1 on LISTEN): wait for both.
    await until(() => tabs.every((tab) => tab.badges.at(-1) === 0));
    for (const socket of sockets) socket.disconnect();
  });
});

// The same two instances sharing a real Redis: one Socket.IO cluster (each instance sees the
// other's sockets), badge counts shared, and a Redis restart that loses nothing for a socket.
describe.skipIf(!redisInstalled && !process.env.CI)('real time across instances sharing Redis', async () => {
  const redis = await startRedis();
  afterAll(() => redis.stop());
  const { apps, identity } = await notificationTestApp({ instances: 2, redisUrl: redis.url });
  const urls = [await apps[0]!.listen({ host: '127.0.0.1', port: 0 }), await apps[1]!.listen({ host: '127.0.0.1', port: 0 })];
  const user = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const admin = identity.user({ roles: ['admin'], departmentCode: 'ADMIN' });
  const sockets: Socket[] = [];
  afterAll(() => sockets.forEach((socket) => socket.disconnect()));
  const until = async (done: () => boolean | Promise<boolean>, what: string) => {
    for (let i = 0; i < 600; i++) {
      if (await done()) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`gave up waiting for ${what}`);
  };
  const tab = async (instance: number) => {
    const socket = connect(urls[instance], { path: '/socket.io', transports: ['websocket'], auth: { token: await identity.token(user) }, reconnection: false, forceNew: true });
    sockets.push(socket);
    const seen = { ids: [] as string[], badges: [] as number[], disconnects: 0 };
    socket.on('notification:new', (n: { id: string }) => seen.ids.push(n.id));
    socket.on('badge:update', (b: { total: number }) => seen.badges.push(b.total));
    socket.on('disconnect', () => seen.disconnects++);
    await new Promise<void>((resolve) => socket.once('badge:update', () => resolve()));
    return seen;
  };
  const create = async (instance: number, title: string) => {
    const response = await asUser(apps[instance]!, await identity.token(admin)).inject({
      method: 'POST', url: '/api/v1/notifications', payload: { department_code: 'LAB', notification_type: 'NOTE', title, message: 'm' },
    });
    expect(response.statusCode).toBe(201);
    return response.json<{ id: string }>().id;
  };
  const usersSocketsSeenBy = async (instance: number) => (await apps[instance]!.realtime.io.in(`user:${user.id}`).fetchSockets()).length;

  it('a socket on one instance gets what the other commits, and nothing is lost while Redis restarts', async () => {
    const onA = await tab(0);
    await tab(1);
    // One cluster: each instance finds the user's sockets on both (the in-memory adapter sees its own only).
    await until(async () => (await usersSocketsSeenBy(0)) === 2 && (await usersSocketsSeenBy(1)) === 2, 'both sockets seen from both instances');

    const first = await create(1, 'before');
    await until(() => onA.ids.includes(first) && onA.badges.at(-1) === 1, 'the broadcast and its badge on instance 0');
    const reader = asUser(apps[1]!, await identity.token(user));
    expect((await reader.inject({ method: 'POST', url: `/api/v1/notifications/${first}/read` })).statusCode).toBe(200);
    await until(() => onA.badges.at(-1) === 0, "the read's badge on instance 0");

    await redis.kill();
    const during = [await create(1, 'during 1'), await create(1, 'during 2')];
    // Counts come from the tables while Redis is away, on both instances.
    for (const app of apps) {
      const served = await asUser(app, await identity.token(user)).inject({ url: '/api/v1/notifications/unread-count' });
      expect(served.json<{ total: number }>().total).toBe(2);
    }
    await redis.start();
    const after = [await create(1, 'after 1'), await create(1, 'after 2')];
    const expected = [first, ...during, ...after];
    await until(() => onA.ids.length >= expected.length && onA.badges.at(-1) === 4, 'every notification on instance 0');
    for (const app of apps) await app.realtime.settled();
    expect(onA.ids).toEqual(expected); // each once, in commit order
    expect(onA.disconnects).toBe(0);
    // The cluster is whole again after the restart.
    await until(async () => (await usersSocketsSeenBy(1)) === 2, 'both sockets seen from instance 1 after the restart');
  });
});
