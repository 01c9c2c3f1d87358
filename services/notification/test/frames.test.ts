import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Server, type ServerOptions, type Socket as ServerSocket } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';
import { framedEvents } from '../src/realtime/frames.ts';
import { countTcpWrites } from './tcp-writes.ts';

// A bare Socket.IO server with one connected client: the module is tested on the real transports.
async function pair(options: Partial<ServerOptions>) {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], serveClient: false, ...options });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const joined = new Promise<ServerSocket>((resolve) => io.once('connection', (socket) => void Promise.resolve(socket.join('room')).then(() => resolve(socket))));
  const client: Socket = connect(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
  const server = await joined;
  const events: [string, unknown][] = [];
  client.onAny((name: string, payload: unknown) => events.push([name, payload]));
  // Engine.IO packets the server makes for this socket: a frame of several events is one packet.
  const packets: unknown[] = [];
  server.conn.on('packetCreate', (packet: { type: string }) => {
    if (packet.type === 'message') packets.push(packet);
  });
  const received = async (count: number) => {
    for (let i = 0; i < 400 && events.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return events;
  };
  const close = async () => {
    client.disconnect();
    await io.close();
  };
  return { io, server, received, packets, close };
}

describe('framed events', () => {
  const closing: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closing) await close();
  });
  const big = 'x'.repeat(70_000);
  const payloads = [{ id: 1, title: 'short' }, { id: 2, title: 'y'.repeat(300) }, { id: 3, title: big }];

  it("writes a socket its events as one write to its TCP socket, past engine.io's layers, and the client gets each event, in order (7, 16 and 64-bit frame lengths)", async () => {
    const { io, server, received, packets, close } = await pair({});
    closing.push(close);
    const framed = framedEvents(io);
    const writes = countTcpWrites(server);
    const events = [...payloads.map((payload) => framed.encode('notification:new', payload)), framed.encode('badge:update', { total: 3 })];
    framed.send(new Map([[server, events]]));
    expect(await received(4)).toEqual([...payloads.map((payload) => ['notification:new', payload]), ['badge:update', { total: 3 }]]);
    expect(writes()).toBe(1);
    expect(packets).toHaveLength(0);
  });

  it('keeps its place behind what engine.io still holds for the socket (one packet, after those)', async () => {
    const { io, server, received, packets, close } = await pair({});
    closing.push(close);
    const framed = framedEvents(io);
    server.emit('sent', 1); // handed to ws: the transport is busy until its write's callback…
    server.emit('held', 2); // …so this one waits in engine.io's buffer
    expect((server.conn as unknown as { writeBuffer: unknown[] }).writeBuffer).toHaveLength(1);
    framed.send(new Map([[server, [framed.encode('notification:new', payloads[0]), framed.encode('badge:update', { total: 1 })]]]));
    expect(await received(4)).toEqual([['sent', 1], ['held', 2], ['notification:new', payloads[0]], ['badge:update', { total: 1 }]]);
    expect(packets).toHaveLength(3);
  });

  it('falls back to one ordinary message per event where engine.io would not write the frame as given (perMessageDeflate)', async () => {
    const { io, server, received, packets, close } = await pair({ perMessageDeflate: { threshold: 0 } });
    closing.push(close);
    const framed = framedEvents(io);
    framed.send(new Map([[server, [framed.encode('notification:new', payloads[2]), framed.encode('badge:update', { total: 1 })]]]));
    expect(await received(2)).toEqual([['notification:new', payloads[2]], ['badge:update', { total: 1 }]]);
    expect(packets).toHaveLength(2);
  });

  it("finds a room's sockets of this server", async () => {
    const { io, server, close } = await pair({});
    closing.push(close);
    const framed = framedEvents(io);
    expect([...framed.socketsIn(['room', 'nobody'])]).toEqual([server]);
    expect(framed.socketsIn(['nobody']).size).toBe(0);
  });
});
