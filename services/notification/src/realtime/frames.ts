import type { Writable } from 'node:stream';
import type { Server, Socket } from 'socket.io';

/** One Socket.IO event, encoded once for every socket it goes to. */
export interface EncodedEvent {
  /** The Engine.IO message (the Socket.IO packet as text), for sockets that cannot take a frame. */
  readonly packet: string;
  /** The complete WebSocket frame carrying it. */
  readonly frame: Buffer;
}

// RFC 6455 §5.2: FIN + text opcode, unmasked (server to client), then a 7, 16 or 64-bit length.
function textFrame(message: string): Buffer {
  const body = Buffer.from(`4${message}`); // "4": an Engine.IO message packet
  const length = body.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81;
  if (length < 126) frame[1] = length;
  else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  body.copy(frame, headerLength);
  return frame;
}

interface FrameTransport {
  readonly name: string;
  readonly opts?: { readonly perMessageDeflate?: unknown };
  /** ws's WebSocket: its sender, and the TCP socket it writes to. */
  readonly socket?: { readonly readyState?: number; readonly _sender?: { readonly sendFrame?: unknown; readonly _queue?: readonly unknown[] }; readonly _socket?: Writable | null };
}

const WS_OPEN = 1;

// What engine.io's websocket transport checks before writing a pre-encoded frame as given.
function takesFrames(socket: Socket): boolean {
  const transport = socket.conn.transport as unknown as FrameTransport;
  return transport.name === 'websocket' && !transport.opts?.perMessageDeflate && typeof transport.socket?._sender?.sendFrame === 'function';
}

/**
 * The TCP socket under a socket that takes frames, when a frame written to it now still comes
 * after everything engine.io was given for it: engine.io's own buffer is empty (what it flushed is
 * in ws's hands), and ws's sender holds nothing back either (it queues while compressing or
 * reading a Blob; otherwise it writes each frame to the TCP socket as it gets it), whose writes
 * keep their order.
 */
function tcpSocketOf(socket: Socket): Writable | undefined {
  const ws = (socket.conn.transport as unknown as FrameTransport).socket;
  const buffered = (socket.conn as unknown as { writeBuffer?: readonly unknown[] }).writeBuffer;
  const queued = ws?._sender?._queue?.length ?? 0;
  return ws?.readyState === WS_OPEN && buffered?.length === 0 && queued === 0 && ws._socket?.writable ? ws._socket : undefined;
}

/**
 * Why: a broadcast costs one write syscall per WebSocket frame per socket (ws corks a frame's
 * header and body into one writev), in this process and again in the gateway's pipe; every new
 * notification sends two events to each viewer (notification:new, then its badge:update), so on
 * 1,000 sockets the writes are most of a fan-out's CPU. This puts all of a socket's events, as
 * complete frames, in one buffer handed to engine.io as a pre-encoded frame (the mechanism
 * socket.io-adapter uses for one broadcast frame, `wsPreEncodedFrame`): one write per socket, and
 * the client's parser still reads one frame, one event, after the other, in order. When engine.io
 * holds nothing for the socket, the buffer goes straight to its TCP socket (`tcpSocketOf`):
 * engine.io's and ws's layers around each write (a packet, its flush, the send callback and its
 * drain, and their garbage) were a fifth of the fan-out's CPU. A socket whose transport would not
 * write the frame as given (perMessageDeflate, not a websocket) gets each event as an ordinary
 * Engine.IO message instead.
 */
export function framedEvents(io: Server) {
  const namespace = io.of('/');
  return {
    /** Encodes an event once, with the server's own encoder; its payload is JSON (binary would need attachments). */
    encode(name: string, payload: unknown): EncodedEvent {
      const [packet, ...attachments] = io.encoder.encode({ type: 2 /* EVENT */, nsp: '/', data: [name, payload] }) as unknown[];
      if (typeof packet !== 'string' || attachments.length > 0) throw new TypeError(`${name}: only JSON payloads are framed`);
      return { packet, frame: textFrame(packet) };
    },
    /** This instance's sockets in any of the rooms, each once. */
    socketsIn(rooms: readonly string[]): Set<Socket> {
      const found = new Set<Socket>();
      for (const room of rooms) {
        for (const id of namespace.adapter.rooms.get(room) ?? []) {
          const socket = namespace.sockets.get(id);
          if (socket) found.add(socket);
        }
      }
      return found;
    },
    /**
     * Writes each socket its events, in order. Sockets given the same array (by identity) share
     * one concatenated buffer.
     */
    send(targets: ReadonlyMap<Socket, readonly EncodedEvent[]>): void {
      const joined = new Map<readonly EncodedEvent[], Buffer>();
      for (const [socket, events] of targets) {
        if (socket.conn.readyState !== 'open' || events.length === 0) continue;
        if (!takesFrames(socket)) {
          for (const event of events) socket.conn.write(event.packet);
          continue;
        }
        const frames = joined.get(events) ?? joined.set(events, events.length === 1 ? events[0]!.frame : Buffer.concat(events.map((event) => event.frame))).get(events)!;
        const tcp = tcpSocketOf(socket);
        if (tcp) tcp.write(frames);
        else socket.conn.write(events[0]!.packet, { wsPreEncodedFrame: [frames] } as { compress?: boolean });
      }
    },
  };
}

export type FramedEvents = ReturnType<typeof framedEvents>;
