/**
 * A bare TCP relay for the notifications scenario's floor: every connection to <port> is piped
 * byte for byte to <target port> on loopback (what the gateway does with a WebSocket once the
 * upstream answered 101, without the handshake's checks). Run as its own process:
 * `node --import tsx bench/src/servers/bare-proxy.ts <port> <target port>`; prints "listening".
 */
import net from 'node:net';
import process from 'node:process';

const [port, target] = process.argv.slice(2).map(Number);
const server = net.createServer((client) => {
  const upstream = net.connect(target!, '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
});
