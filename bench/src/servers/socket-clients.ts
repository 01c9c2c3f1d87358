/**
 * Socket.IO clients for the notifications scenario, in their own process (the clients must not
 * share a CPU queue with the bench's timer): `node --import tsx bench/src/servers/socket-clients.ts
 * <url> <token> <count>` opens <count> websocket-only sockets, prints "ready" once all are
 * connected, then, for every notification that has reached all of them, one line
 * `done <key> <last> <first> <firstWall>`: its key (reference_id, else id), when the last and the
 * first socket received it on the monotonic clock every process of the machine shares
 * (process.hrtime), and the first on the wall clock (to compare with the databases' timestamps).
 *
 * Lean on purpose: the clients share the machine's 2 cores with the servers they measure, and
 * socket-io-client's layers (Manager, reconnection and heartbeat timers, emitters) cost more CPU
 * per event than the server's fan-out to the same socket. Each socket is a `ws` WebSocket that
 * speaks the protocol itself with the reference parsers (engine.io-parser, socket.io-parser):
 * the Engine.IO handshake, ping → pong, the namespace CONNECT with `auth` (and CONNECT_ERROR),
 * and every event decoded and its payload parsed as JSON, like socket.io-client does.
 */
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { decodePacket, encodePacket, type Packet as EnginePacket } from 'engine.io-parser';
import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser';
import WebSocket from 'ws';

const [url, token, countText] = process.argv.slice(2);
const count = Number(countText);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const received = new Map<string, { seen: number; first: number; firstWall: number }>();
const sockets: WebSocket[] = [];
let out = '';
let flushing = false;
const write = (line: string) => {
  out += `${line}\n`;
  if (flushing) return;
  flushing = true;
  setImmediate(() => {
    process.stdout.write(out);
    out = '';
    flushing = false;
  });
};

const arrived = (notification: { id: string; reference_id?: string | null }) => {
  const key = notification.reference_id ?? notification.id;
  const at = now();
  const state = received.get(key) ?? { seen: 0, first: at, firstWall: performance.timeOrigin + performance.now() };
  state.seen++;
  if (state.seen === count) {
    received.delete(key);
    write(`done ${key} ${at.toFixed(3)} ${state.first.toFixed(3)} ${state.firstWall.toFixed(3)}`);
  } else received.set(key, state);
};

const encoder = new Encoder();
const endpoint = `${url!.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;

// One socket: the Engine.IO session over a WebSocket, then the "/" namespace joined with `auth`.
const open = () =>
  new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(endpoint, { perMessageDeflate: false });
    sockets.push(ws);
    const send = (packet: EnginePacket) => encodePacket(packet, false, (encoded) => ws.send(encoded as string));
    const decoder = new Decoder();
    decoder.on('decoded', (packet: Packet) => {
      if (packet.type === PacketType.EVENT) {
        const [name, payload] = packet.data as [string, unknown];
        if (name === 'notification:new') arrived(payload as { id: string; reference_id?: string | null });
      } else if (packet.type === PacketType.CONNECT) resolve();
      else if (packet.type === PacketType.CONNECT_ERROR) reject(new Error(`refused: ${JSON.stringify(packet.data)}`));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const packet = decodePacket(isBinary ? data : data.toString(), 'nodebuffer');
      if (packet.type === 'message') decoder.add(packet.data);
      else if (packet.type === 'ping') send({ type: 'pong' });
      else if (packet.type === 'open') for (const encoded of encoder.encode({ type: PacketType.CONNECT, nsp: '/', data: { token } }) as string[]) send({ type: 'message', data: encoded });
    });
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before connecting')));
  });

for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: Math.min(50, count - i) }, open));
write('ready');
process.once('SIGTERM', () => {
  for (const ws of sockets) ws.close();
  process.exit(0);
});
