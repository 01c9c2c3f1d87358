import { describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
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
    await until(() => tabs[1]!.badges.at(-1) === 0);
    expect(tabs[0]!.badges.at(-1)).toBe(0);
    for (const socket of sockets) socket.disconnect();
  });
});
