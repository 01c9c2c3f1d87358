import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { RETRY_AFTER_SECONDS, type HttpServer } from '@archipelago/platform';
import { SERVICE_TOKEN_HEADER, type ServiceCredentials } from '@archipelago/platform/internal-auth';
import type { UpgradeAdmission } from './access.ts';
import { isEdgeHeader } from './forwarded.ts';
import { nextTraceparent } from './trace.ts';
import { isCanonicalPath, isUnder } from './paths.ts';
import { websocketPrefixes, type Balancer, type Upstream } from './upstreams.ts';

const SKIPPED = new Set(['host', 'x-request-id', 'traceparent']);

/**
 * Proxies WebSocket upgrades (Socket.IO) to the service owning the path: the handshake is
 * replayed to the upstream, and only once it answers 101 are the two sockets piped. Upgrades are
 * accepted on WebSocket routes only (else 404), so no other request can ride an upgraded
 * connection past the gateway's checks. The connection goes to one instance (the balancer's
 * choice) and stays there for its life: Socket.IO runs WebSocket-only, so no request of it needs
 * to find the same instance again. An instance that refuses is skipped; when all do, a 503 with
 * Retry-After; one that fails otherwise is a 502. Upgrades count against a per-address limit
 * (`admit`; over it, a 429 with Retry-After). Once piped, the bytes are not looked at, and both
 * sockets send at once (no Nagle): a frame of a broadcast is not held back waiting for an ACK.
 */
export function proxyWebSockets(app: HttpServer, upstreams: readonly Upstream[], balancers: ReadonlyMap<string, Balancer>, credentials: ServiceCredentials, admit: UpgradeAdmission): void {
  const open = new Set<Duplex>();
  const websocketRoutes = websocketPrefixes(upstreams);
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Upgraded sockets are not the HTTP server's any more: track them so closing can end them.
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    const path = (request.url ?? '/').split('?')[0]!;
    if (!isCanonicalPath(path) || !websocketRoutes.some((prefix) => isUnder(path, prefix))) return refuse(socket, '404 Not Found');
    const upstream = upstreams.find((u) => u.routes.some((route) => route.websocket && isUnder(path, route.prefix)));
    if (!upstream) return refuse(socket, '404 Not Found');
    admit(request.socket.remoteAddress ?? '').then(
      (retryAfter) => {
        if (retryAfter !== undefined) return refuse(socket, `429 Too Many Requests\r\nRetry-After: ${retryAfter}`);
        credentials.token(upstream.service).then(
          (token) => relay(request, socket, head, balancers.get(upstream.service)!, new Set(), token),
          () => refuse(socket, '502 Bad Gateway'),
        );
      },
      () => refuse(socket, '502 Bad Gateway'),
    );
  });
  app.addHook('preClose', async () => {
    for (const socket of open) socket.destroy();
  });
}

// Replays the handshake to the upstream (with the gateway's token), and pipes once it answers 101.
function relay(request: IncomingMessage, socket: Duplex, head: Buffer, balancer: Balancer, tried: Set<string>, serviceToken: string): void {
  const lease = balancer.pick(tried);
  if (!lease) return refuse(socket, `503 Service Unavailable\r\nRetry-After: ${RETRY_AFTER_SECONDS}`);
  tried.add(lease.url);
  const target = new URL(lease.url);
  const connection = net.connect({ port: Number(target.port || 80), host: target.hostname, noDelay: true });
  let connected = false;
  connection.setTimeout(10_000, () => connection.destroy());
  connection.once('connect', () => {
    connected = true;
    connection.setTimeout(0);
    const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/1.1`, `Host: ${target.host}`];
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      const name = request.rawHeaders[i]!;
      if (!SKIPPED.has(name.toLowerCase()) && !isEdgeHeader(name)) lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
    }
    lines.push(
      `X-Forwarded-For: ${request.socket.remoteAddress ?? ''}`,
      `Traceparent: ${nextTraceparent(request.headers.traceparent)}`,
      `${SERVICE_TOKEN_HEADER}: ${serviceToken}`,
    );
    connection.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) connection.write(head);
    // The client's further bytes go upstream only over an established WebSocket.
    connection.once('data', (first: Buffer) => {
      socket.write(first);
      if (!/^HTTP\/1\.[01] 101 /.test(first.toString('latin1', 0, 16))) {
        socket.end();
        connection.destroy();
        return;
      }
      if (socket instanceof net.Socket) socket.setNoDelay(true);
      connection.pipe(socket);
      socket.pipe(connection);
    });
  });
  connection.on('error', (error: NodeJS.ErrnoException) => {
    if (connected) return void socket.destroy();
    if (error.code !== 'ECONNREFUSED') return refuse(socket, '502 Bad Gateway');
    lease.refused();
    relay(request, socket, head, balancer, tried, serviceToken);
  });
  connection.on('close', () => {
    lease.release();
    if (connected) socket.destroy();
  });
  socket.on('error', () => connection.destroy());
  socket.on('close', () => connection.destroy());
}

function refuse(socket: Duplex, status: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}
