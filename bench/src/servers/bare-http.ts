/**
 * The baseline: a bare `node:http` server answering every request with a small JSON document the
 * size and shape of masterdata's label. Run as its own process (like a service):
 * `node --import tsx bench/src/servers/bare-http.ts <port>`; prints "listening" when ready.
 */
import { createServer } from 'node:http';
import process from 'node:process';

const body = JSON.stringify({
  id: '5b0445d1-b436-4cf1-94aa-22d870bb7aee',
  code: 'MR',
  label: 'Mr.',
  display_name: 'Mister',
  abbreviation: 'Mr.',
  display_order: 1,
  is_active: true,
  version: 1,
});
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };

const server = createServer((_request, response) => {
  response.writeHead(200, headers);
  response.end(body);
});
server.keepAliveTimeout = 72_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
