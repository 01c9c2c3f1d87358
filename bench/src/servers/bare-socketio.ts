/**
 * The baseline of the notifications scenario: a bare Socket.IO server (websocket only, the
 * in-memory adapter, no auth, no database) that broadcasts each `POST /broadcast` body to every
 * socket as `notification:new`. Run as its own process, like a service:
 * `node --import tsx bench/src/servers/bare-socketio.ts <port>`; prints "listening" when ready.
 */
import { createServer } from 'node:http';
import process from 'node:process';
import { Server } from 'socket.io';

const server = createServer((request, response) => {
  if (request.method !== 'POST' || request.url !== '/broadcast') {
    response.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    io.emit('notification:new', JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
    response.writeHead(204).end();
  });
});
const io = new Server(server, { transports: ['websocket'], serveClient: false });
server.keepAliveTimeout = 72_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => {
  void io.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
