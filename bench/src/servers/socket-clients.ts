/**
 * Socket.IO clients for the notifications scenario, in their own process (the clients must not
 * share a CPU queue with the bench's timer): `node --import tsx bench/src/servers/socket-clients.ts
 * <url> <token> <count>` opens <count> websocket-only sockets, prints "ready" once all are
 * connected, then, for every notification that has reached all of them, one line
 * `done <key> <last> <first> <firstWall>`: its key (reference_id, else id), when the last and the
 * first socket received it on the monotonic clock every process of the machine shares
 * (process.hrtime), and the first on the wall clock (to compare with the databases' timestamps).
 */
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { io, type Socket } from 'socket.io-client';

const [url, token, countText] = process.argv.slice(2);
const count = Number(countText);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const received = new Map<string, { seen: number; first: number; firstWall: number }>();
const sockets: Socket[] = [];
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

const open = () =>
  new Promise<void>((resolve, reject) => {
    const socket = io(url, { path: '/socket.io', transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
    sockets.push(socket);
    socket.on('notification:new', (n: { id: string; reference_id?: string | null }) => {
      const key = n.reference_id ?? n.id;
      const at = now();
      const state = received.get(key) ?? { seen: 0, first: at, firstWall: performance.timeOrigin + performance.now() };
      state.seen++;
      if (state.seen === count) {
        received.delete(key);
        write(`done ${key} ${at.toFixed(3)} ${state.first.toFixed(3)} ${state.firstWall.toFixed(3)}`);
      } else received.set(key, state);
    });
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });

for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: Math.min(50, count - i) }, open));
write('ready');
process.once('SIGTERM', () => {
  for (const socket of sockets) socket.disconnect();
  process.exit(0);
});
