import type { Writable } from 'node:stream';
import type { Socket } from 'socket.io';

/** Counts the writes to the TCP socket under a server socket (its websocket transport's), from now on; they still go out. */
export function countTcpWrites(socket: Socket): () => number {
  const tcp = (socket.conn.transport as unknown as { socket: { _socket: Writable } }).socket._socket;
  const write = tcp.write.bind(tcp) as (...args: unknown[]) => boolean;
  let writes = 0;
  tcp.write = ((...args: unknown[]) => {
    writes++;
    return write(...args);
  }) as Writable['write'];
  return () => writes;
}
