import { io as connect, type Socket } from 'socket.io-client';

/** What a socket saw of a notification. */
interface Delivered {
  readonly id: string;
  readonly cursor: string;
  readonly created_at: string;
}

export interface UnreadCounts {
  readonly total: number;
}

/** A user's socket through the gateway that stays connected: on every (re)connection it sends its last cursor, so it gets what it missed. */
export interface Listener {
  readonly userId: string;
  readonly departmentCode: string | null;
  readonly token: string;
  /** Notification id → how many times it arrived (live or by catch-up). */
  readonly received: Map<string, number>;
  readonly stats: { connects: number; disconnects: number; refusals: number };
  lastBadge(): UnreadCounts | undefined;
  /** Resolves at the first badge:update (the socket has joined its rooms). */
  readonly joined: Promise<void>;
  close(): void;
}

const after = (a: Delivered, b: Delivered | undefined) => !b || a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id);

/** Connects `user` through the gateway, catching up from `cursor` (the newest notification it had seen). */
export function listen(gateway: string, user: { id: string; departmentCode: string | null; token: string }, cursor: string | undefined): Listener {
  let last: Delivered | undefined;
  let badge: UnreadCounts | undefined;
  const received = new Map<string, number>();
  const stats = { connects: 0, disconnects: 0, refusals: 0 };
  const socket: Socket = connect(gateway, {
    path: '/socket.io',
    transports: ['websocket'],
    forceNew: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 2_000,
    auth: (give: (auth: object) => void) => give({ token: user.token, ...((last?.cursor ?? cursor) ? { cursor: last?.cursor ?? cursor } : {}) }),
  });
  socket.on('notification:new', (notification: Delivered) => {
    received.set(notification.id, (received.get(notification.id) ?? 0) + 1);
    if (after(notification, last)) last = notification;
  });
  let joined = () => undefined as void;
  const joinedOnce = new Promise<void>((resolve) => (joined = resolve));
  socket.on('badge:update', (counts: UnreadCounts) => {
    badge = counts;
    joined();
  });
  socket.on('connect', () => stats.connects++);
  socket.on('connect_error', () => stats.refusals++);
  socket.on('disconnect', (reason) => {
    stats.disconnects++;
    // A server that shut down (or refused) does not get an automatic reconnection: ask again.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 200);
  });
  return {
    userId: user.id,
    token: user.token,
    departmentCode: user.departmentCode,
    received,
    stats,
    lastBadge: () => badge,
    joined: joinedOnce,
    close: () => void socket.disconnect(),
  };
}
