import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import type { TestUser } from '@archipelago/platform/testing/identity';
import { notificationTestApp } from './notification-app.ts';
import { countTcpWrites } from './tcp-writes.ts';

interface Pushed {
  id: string;
  reference_id?: string | null;
  title: string;
  cursor: string;
}
interface Badge {
  total: number;
  HIGH: number;
}

/** A connected client that records what it is sent. */
function recorder(socket: Socket) {
  const notifications: Pushed[] = [];
  const badges: Badge[] = [];
  const waiters: (() => void)[] = [];
  const poke = () => waiters.splice(0).forEach((wake) => wake());
  socket.on('notification:new', (n: Pushed) => {
    notifications.push(n);
    poke();
  });
  socket.on('badge:update', (b: Badge) => {
    badges.push(b);
    poke();
  });
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  return { socket, notifications, badges, until };
}

describe('real time over Socket.IO', async () => {
  // No fallback poll within the tests: every delivery below comes from a commit's wake-up.
  const { server, identity, as, peers, db } = await notificationTestApp({ pollMs: 3_600_000 });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const admin = await as(identity.user({ roles: ['admin'], departmentCode: 'LAB' }));
  const opened: Socket[] = [];
  const open = async (token: string, auth: Record<string, unknown> = {}) => {
    const socket = connect(url, { path: '/socket.io', transports: ['websocket'], auth: { token, ...auth }, reconnection: false, forceNew: true });
    opened.push(socket);
    const client = recorder(socket);
    const outcome = await new Promise<{ ok: true } | { ok: false; message: string; data: unknown }>((resolve) => {
      socket.once('connect', () => resolve({ ok: true }));
      socket.once('connect_error', (error: Error & { data?: unknown }) => resolve({ ok: false, message: error.message, data: error.data }));
    });
    return { ...client, outcome };
  };
  const openAs = async (user: TestUser, auth: Record<string, unknown> = {}) => {
    const client = await open(await identity.token(user), auth);
    expect(client.outcome).toEqual({ ok: true });
    await client.until(() => client.badges.length > 0, 'the first badge');
    return client;
  };
  const create = async (payload: object) => {
    const response = await admin.inject({ method: 'POST', url: '/api/v1/notifications', payload: { notification_type: 'NOTE', title: 'Hi', message: 'm', ...payload } });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<Pushed>();
  };
  const lab = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
  const radio = identity.user({ roles: ['staff'], departmentCode: 'RADIO' });

  it("refuses a missing, bad or forged token, a signed-out session's token, and a user without the read permission", async () => {
    expect((await open('')).outcome).toMatchObject({ ok: false, data: { status: 401 } });
    expect((await open('not-a-token')).outcome).toMatchObject({ ok: false, data: { status: 401 } });
    const forged = 'eyJhbGciOiJFZERTQSIsImtpZCI6IngifQ.eyJzdWIiOiJ4IiwiZXhwIjoxfQ.c2ln'; // unknown key, expired in 1970
    expect((await open(forged)).outcome).toMatchObject({ ok: false, data: { status: 401 } });
    const leaving = identity.user({ roles: ['staff'], departmentCode: 'LAB' });
    const token = await identity.token(leaving);
    identity.signOut(leaving);
    expect((await open(token)).outcome).toMatchObject({ ok: false, data: { status: 401 } });
    const outsider = identity.user({ roles: ['outsider'], departmentCode: 'LAB' });
    expect((await open(await identity.token(outsider))).outcome).toMatchObject({ ok: false, data: { status: 403 } });
  });

  it("pushes a department's broadcast to its members only, with the badge, to every tab of a user", async () => {
    const [tab1, tab2, other] = [await openAs(lab), await openAs(lab), await openAs(radio)];
    const before = tab1.badges.at(-1)!.total;
    const sent = await create({ department_code: 'LAB', title: 'For the lab', priority: 'HIGH' });
    for (const tab of [tab1, tab2]) {
      await tab.until(() => tab.notifications.some((n) => n.id === sent.id), 'the broadcast');
      await tab.until(() => tab.badges.at(-1)!.total === before + 1, 'the badge');
    }
    const user = await create({ user_id: radio.id, title: 'For radio' });
    await other.until(() => other.notifications.some((n) => n.id === user.id), "the radiologist's own");
    expect(other.notifications.map((n) => n.id)).not.toContain(sent.id);
    expect(tab1.notifications.map((n) => n.id)).not.toContain(user.id);

    // Reading in one tab updates the other's badge.
    const client = await as(lab);
    const count = tab2.badges.length;
    await client.inject({ method: 'POST', url: `/api/v1/notifications/${sent.id}/read` });
    await tab2.until(() => tab2.badges.length > count, 'the badge after a read');
    expect(tab2.badges.at(-1)!.total).toBe(before);
  });

  it('catches a reconnecting client up from its last cursor: exactly what it missed, in order', async () => {
    const first = await openAs(lab);
    const seen = await create({ department_code: 'LAB', title: 'seen' });
    await first.until(() => first.notifications.some((n) => n.id === seen.id), 'the first');
    const cursor = first.notifications.find((n) => n.id === seen.id)!.cursor;
    first.socket.disconnect();
    const missed = [];
    for (let i = 0; i < 5; i++) missed.push(await create({ department_code: i % 2 ? 'LAB' : undefined, user_id: i % 2 ? undefined : lab.id, title: `missed ${i}` }));
    await create({ department_code: 'RADIO', title: 'not for the lab' });
    const back = await openAs(lab, { cursor });
    expect(back.notifications.map((n) => n.title)).toEqual(missed.map((n) => n.title));
    // And it is live again afterwards, without repeats.
    const live = await create({ department_code: 'LAB', title: 'live' });
    await back.until(() => back.notifications.some((n) => n.id === live.id), 'the live one');
    expect(back.notifications.map((n) => n.title)).toEqual([...missed.map((n) => n.title), 'live']);
  });

  it("pushes the consumer's notification of core's order.created at once, woken by its commit (not by the poll)", async () => {
    const member = await openAs(lab);
    const order = { id: randomUUID(), order_code: 'ORD-WAKE-1', item_name: 'Pipettes', quantity: 1, status: 'PENDING', department_code: 'LAB', created_by: null, version: 1 };
    await peers.publish('order.created', order);
    await member.until(() => member.notifications.some((n) => n.reference_id === order.id), 'the order\'s notification');
  });

  it("delivers the consumer's notification from its commit's announcement, without reading the table again", async () => {
    const member = await openAs(lab);
    const before = { ...server.realtime.delivered };
    const order = { id: randomUUID(), order_code: 'ORD-ANNOUNCED-1', item_name: 'Gloves', quantity: 2, status: 'PENDING', department_code: 'LAB', created_by: null, version: 1 };
    await peers.publish('order.created', order);
    await member.until(() => member.notifications.some((n) => n.reference_id === order.id), 'the order\'s notification');
    expect(member.notifications.find((n) => n.reference_id === order.id)).toMatchObject({ title: 'New order ORD-ANNOUNCED-1', reference_code: 'ORD-ANNOUNCED-1' });
    expect(server.realtime.delivered).toEqual({ fromAnnouncements: before.fromAnnouncements + 1, fromTable: before.fromTable });
  });

  it('delivers a create of the API from its announcement too, without reading the table again', async () => {
    const member = await openAs(lab);
    const before = { ...server.realtime.delivered };
    const sent = await create({ department_code: 'LAB', title: 'Announced' });
    await member.until(() => member.notifications.some((n) => n.id === sent.id), 'the broadcast');
    await server.realtime.settled();
    expect(server.realtime.delivered).toEqual({ fromAnnouncements: before.fromAnnouncements + 1, fromTable: before.fromTable });
  });

  it('loses nothing committed while its listening connection is down, and delivers from announcements again once caught up', async () => {
    const member = await openAs(lab);
    const order = (code: string) => ({ id: randomUUID(), order_code: code, item_name: 'Tape', quantity: 1, status: 'PENDING', department_code: 'LAB', created_by: null, version: 1 });
    const listeners = sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name = 'notification-changes-listener' AND datname = current_database()`;
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'notification-changes-listener' AND datname = current_database()`.execute(db);
    while ((await listeners.execute(db)).rows.length > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const whileDown = order('ORD-DOWN-1');
    await peers.publish('order.created', whileDown);
    await member.until(() => member.notifications.some((n) => n.reference_id === whileDown.id), 'the one committed while the listener was down');
    // Once the table has been read after the new LISTEN, announcements carry the deliveries again.
    await server.realtime.settled();
    const before = { ...server.realtime.delivered };
    const later = order('ORD-BACK-1');
    await peers.publish('order.created', later);
    await member.until(() => member.notifications.some((n) => n.reference_id === later.id), 'the next one');
    expect(server.realtime.delivered.fromAnnouncements).toBe(before.fromAnnouncements + 1);
    expect(member.notifications.filter((n) => n.reference_id === whileDown.id || n.reference_id === later.id)).toHaveLength(2);
  });

  it("sends each socket a new notification and then its user's own badge, as one write per socket", async () => {
    const [one, two] = [identity.user({ roles: ['staff'], departmentCode: 'LAB' }), identity.user({ roles: ['staff'], departmentCode: 'LAB' })];
    const [first, second] = [await openAs(one), await openAs(two)];
    const own = await create({ user_id: two.id, title: 'only for the second' });
    await second.until(() => second.notifications.some((n) => n.id === own.id) && second.badges.length > 1, 'its own and its badge');
    await server.realtime.settled();
    // From here on: what each client receives, in order, and the server's writes to each socket's TCP connection.
    const logs = [first, second].map((client) => {
      const log: [string, unknown][] = [];
      client.socket.onAny((name: string, payload: unknown) => log.push([name, payload]));
      return log;
    });
    const writes = new Map([...server.realtime.io.of('/').sockets.values()].map((socket) => [socket.id, countTcpWrites(socket)]));
    const sent = await create({ department_code: 'LAB', title: 'together' });
    for (const client of [first, second]) await client.until(() => client.badges.length > 0 && client.notifications.some((n) => n.id === sent.id), 'the broadcast and a badge');
    await server.realtime.settled();
    for (const [i, user] of [one, two].entries()) {
      const counts = (await (await as(user)).inject({ method: 'GET', url: '/api/v1/notifications/unread-count' })).json<Badge>();
      expect(logs[i]!.map(([name, payload]) => [name, name === 'notification:new' ? (payload as Pushed).id : payload])).toEqual([['notification:new', sent.id], ['badge:update', counts]]);
    }
    expect(logs[1]![1]![1]).not.toEqual(logs[0]![1]![1]);
    const ids = [first, second].map((client) => client.socket.id);
    expect(ids.map((id) => [id, writes.get(id!)?.()])).toEqual(ids.map((id) => [id, 1]));
  });

  it('closes', () => {
    for (const socket of opened) socket.disconnect();
  });
});
