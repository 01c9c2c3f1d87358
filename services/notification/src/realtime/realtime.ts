import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Server, type Socket } from 'socket.io';
import { AppError, type HttpServer, type Logger } from '@archipelago/platform';
import { permissionCovers, type Auth } from '@archipelago/platform/auth';
import type { RedisConnection } from '@archipelago/platform/redis';
import type { BadgeCounter } from '../notifications/badges.ts';
import { framedEvents, type EncodedEvent } from './frames.ts';
import { decodeCursor, type NotificationRepository, type NotificationView, type Position, type Viewer } from '../notifications/notification.repository.ts';

/** Who a change concerns: users whose own notifications or receipts changed, departments that got a broadcast. */
export interface Change {
  readonly users: readonly string[];
  readonly departments: readonly string[];
  /** New notifications were committed (live delivery reads them from the table). */
  readonly created: boolean;
}

export interface RealtimeOptions {
  readonly auth: Auth;
  readonly repository: NotificationRepository;
  readonly badges: BadgeCounter;
  readonly logger?: Logger;
  /** For LISTEN notification_changes: what other instances (and the event consumer) committed. */
  readonly listenUrl?: string;
  /** Fallback poll of the table when no wake-up came (default 1 s). */
  readonly pollMs?: number;
  /** With REDIS_URL: the instances' Socket.IO servers form one cluster through the Redis Streams adapter. */
  readonly redis?: RedisConnection;
}

/** The real-time side, as the service uses it. */
export interface Realtime {
  /** Called after a commit of this instance: resolves once cached counts are dropped; then delivers and pushes badges. */
  changed(change: Change): Promise<void>;
  /**
   * What to announce in the committing transaction so other instances follow (see `announce`);
   * `everyone`: this instance too, for a commit it does not follow itself with `changed` (the
   * event consumer's, which commits inside the platform's consumer). `rows`: the notifications the
   * transaction made, carried when they fit in a NOTIFY, so listeners deliver them without reading
   * the table again. A change too big for one NOTIFY (a create for hundreds of users) is split
   * into several, each naming some of its users and departments.
   */
  announcements(change: Change, audience?: 'others' | 'everyone', rows?: readonly NotificationView[]): readonly string[];
  /** Resolves once everything committed so far has been delivered (tests, shutdown). */
  settled(): Promise<void>;
  /** The Socket.IO server (with REDIS_URL, its rooms span every instance). */
  readonly io: Server;
  /** Notifications delivered live so far, by where they were read: their commit's announcement, or the table. */
  readonly delivered: Readonly<{ fromAnnouncements: number; fromTable: number }>;
}

const PAGE = 500;
const READ_PERMISSION = 'notifications:read';
// PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; bigger announcements go without their rows.
const PAYLOAD_LIMIT = 7_900;

type Announcement = Change & { readonly instance?: string; readonly rows?: readonly NotificationView[] };

// One NOTIFY per part of the change that fits: halves of its users and departments until each does.
function split(announced: Announcement): string[] {
  const payload = JSON.stringify(announced);
  const names = announced.users.length + announced.departments.length;
  if (Buffer.byteLength(payload) < PAYLOAD_LIMIT || names <= 1) return [payload];
  const half = (list: readonly string[], first: boolean) => {
    const cut = Math.ceil(list.length / 2);
    return first ? list.slice(0, cut) : list.slice(cut);
  };
  return [true, false].flatMap((first) => split({ ...announced, users: half(announced.users, first), departments: half(announced.departments, first) }));
}

const isAfter = (a: Position, b: Position) => a.at > b.at || (a.at === b.at && a.id > b.id);
const roomOf = (notification: NotificationView) => (notification.user_id ? `user:${notification.user_id}` : `dept:${notification.department_code}`);

/**
 * Socket.IO at /socket.io, WebSocket only (the gateway proxies upgrades; long-polling would need
 * sticky sessions across instances). A socket authenticates with `auth: { token }` like a request,
 * joins `user:<id>` and `dept:<code>`, and may send `cursor` (the last notification it saw): it
 * then gets exactly what it missed, from the table. Live delivery reads the table too, in commit
 * order (inserts take created_at under one lock), woken by this instance's commits, by
 * LISTEN notification_changes (other instances, the event consumer) and by a slow poll; one queue
 * serialises deliveries and catch-ups, so nothing is sent twice or skipped.
 *
 * An announcement that carries its rows is delivered from them, without reading the table: NOTIFY
 * hands out commits in commit order, which the insert lock makes created_at order, so while the
 * listening connection stays up, the announcements are every insert, in order. That holds only
 * once a read of the table begun after LISTEN has caught up (`inStep`); until then, and whenever
 * the connection drops, announcements only wake a read of the table.
 */
export async function startRealtime(app: HttpServer, options: RealtimeOptions): Promise<Realtime> {
  const { repository, badges } = options;
  const instance = randomUUID();
  const io = new Server(app.server, { path: '/socket.io', transports: ['websocket'], serveClient: false });
  if (options.redis) {
    // Loaded only with REDIS_URL. It is CommonJS: bundled, its exports may arrive under `default`.
    const adapter = await import('@socket.io/redis-streams-adapter');
    const createAdapter = typeof adapter.createAdapter === 'function' ? adapter.createAdapter : (adapter as unknown as { default: typeof adapter }).default.createAdapter;
    io.adapter(createAdapter(options.redis.client, { streamName: 'notification:socket.io' }));
  }
  // Every emit is local: each instance delivers to its own sockets from the table (see README "Redis").
  const local = io.local;
  const framed = framedEvents(io);

  let position: Position = await repository.newest();
  const delivered = { fromAnnouncements: 0, fromTable: 0 };
  let listening = false;
  let inStep = false;
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (work: () => Promise<void>): Promise<void> => {
    queue = queue.then(work).catch((error: unknown) => options.logger?.warn({ err: error }, 'notification delivery failed; retried on the next wake-up'));
    return queue;
  };

  const viewersIn = async (rooms: readonly string[]): Promise<Viewer[]> => {
    if (rooms.length === 0) return [];
    const sockets = await local.in([...rooms]).fetchSockets();
    const viewers = new Map<string, Viewer>();
    for (const socket of sockets) {
      const viewer = socket.data as Viewer;
      viewers.set(viewer.userId, viewer);
    }
    return [...viewers.values()];
  };
  const pushBadges = async (users: readonly string[], departments: readonly string[]) => {
    const viewers = await viewersIn([...users.map((id) => `user:${id}`), ...departments.map((code) => `dept:${code}`)]);
    // One emit per distinct count (encoded once), to the rooms of every user who has it.
    const byCount = new Map<string, { count: unknown; rooms: string[] }>();
    for (const [userId, count] of await badges.countsOf(viewers)) {
      const key = JSON.stringify(count);
      const entry = byCount.get(key) ?? byCount.set(key, { count, rooms: [] }).get(key)!;
      entry.rooms.push(`user:${userId}`);
    }
    for (const { count, rooms } of byCount.values()) local.to(rooms).emit('badge:update', count);
  };
  const forget = async (change: Pick<Change, 'users' | 'departments'>) => {
    await Promise.all([...change.users.map((id) => badges.userChanged(id)), ...change.departments.map((code) => badges.departmentChanged(code))]);
  };
  const follow = (change: Change) => {
    if (change.created) void deliver();
    else void enqueue(() => pushBadges(change.users, change.departments));
  };

  // Sends what follows the position, in order: to each socket that may see them, the new
  // notifications and then its badge, in one write (frames.ts).
  const emitNew = async (rows: readonly NotificationView[], source: keyof typeof delivered) => {
    const fresh: NotificationView[] = [];
    for (const notification of rows) {
      if (!isAfter({ at: notification.created_at, id: notification.id }, position)) continue;
      position = { at: notification.created_at, id: notification.id };
      fresh.push(notification);
    }
    delivered[source] += fresh.length;
    if (fresh.length === 0) return;
    // Who is to get which: taken before the counts are read; sockets join only from this queue.
    const seen = new Map<Socket, number[]>();
    fresh.forEach((notification, i) => {
      for (const socket of framed.socketsIn([roomOf(notification)])) (seen.get(socket) ?? seen.set(socket, []).get(socket)!).push(i);
    });
    // The rows' cached counts move on; a viewer's count known up to a position is added to, not read again (badges.ts).
    const counts = await badges.countsAfter([...new Map([...seen.keys()].map((socket) => [(socket.data as Viewer).userId, socket.data as Viewer])).values()], fresh);
    const news = fresh.map((notification) => framed.encode('notification:new', notification));
    // Sockets that get the same notifications and the same count share one buffer (a user's count is written out once).
    const groups = new Map<string, EncodedEvent[]>();
    const targets = new Map<Socket, EncodedEvent[]>();
    const countKeys = new Map<string, string>();
    for (const [socket, indexes] of seen) {
      const { userId } = socket.data as Viewer;
      const count = counts.get(userId);
      const countKey = countKeys.get(userId) ?? countKeys.set(userId, JSON.stringify(count)).get(userId)!;
      const key = `${indexes.join(',')}|${countKey}`;
      const events = groups.get(key) ?? groups.set(key, [...indexes.map((i) => news[i]!), framed.encode('badge:update', count)]).get(key)!;
      targets.set(socket, events);
    }
    framed.send(targets);
  };

  let deliveryQueued = false;
  const deliver = () => {
    if (deliveryQueued) return queue;
    deliveryQueued = true;
    return enqueue(async () => {
      deliveryQueued = false;
      const listened = listening;
      for (;;) {
        const fresh = await repository.allSince(position, PAGE);
        await emitNew(fresh, 'fromTable');
        if (fresh.length < PAGE) break;
      }
      // Everything committed before this read began is sent; what follows comes announced, in order.
      if (listened && listening) inStep = true;
    });
  };

  const received = (payload: string) => {
    let change: Announcement;
    try {
      change = JSON.parse(payload) as Announcement;
    } catch {
      return void deliver();
    }
    const { rows } = change;
    if (rows && inStep) return void enqueue(() => emitNew(rows, 'fromAnnouncements'));
    if (change.instance !== instance) return void forget(change).then(() => follow(change));
    // This instance's own commit, announced without its rows: `changed` left its delivery to it.
    if (change.created && !rows) void deliver();
  };
  const listener = options.listenUrl
    ? await listen(options.listenUrl, received, (up) => {
      listening = up;
      inStep = false;
      if (up) void deliver();
    })
    : undefined;
  const poll = setInterval(() => void deliver(), options.pollMs ?? 1_000);
  poll.unref();

  io.use((socket, next) => {
    authenticate(socket, options.auth).then(
      (viewer) => {
        socket.data = viewer;
        next();
      },
      (error: unknown) => {
        const refused = new Error(error instanceof AppError ? error.message : 'The token cannot be checked now') as Error & { data: unknown };
        refused.data = { status: error instanceof AppError ? error.status : 503, code: error instanceof AppError ? error.code : 'UNAVAILABLE' };
        next(refused);
      },
    );
  });
  io.on('connection', (socket) => {
    const viewer = socket.data as Viewer;
    const raw: unknown = (socket.handshake.auth as { cursor?: unknown }).cursor;
    const cursor = typeof raw === 'string' ? decodeCursor(raw) : undefined;
    if (raw !== undefined && !cursor) {
      socket.emit('error:cursor', { detail: 'cursor is not a cursor this service gave out; no catch-up was sent' });
    }
    void enqueue(async () => {
      if (cursor) {
        let after = cursor;
        for (;;) {
          const missed = await repository.since(viewer, after, position, PAGE);
          for (const notification of missed) socket.emit('notification:new', notification);
          if (missed.length < PAGE) break;
          const last = missed[missed.length - 1]!;
          after = { at: last.created_at, id: last.id };
        }
      }
      if (!socket.connected) return;
      await socket.join([`user:${viewer.userId}`, ...(viewer.departmentCode ? [`dept:${viewer.departmentCode}`] : [])]);
      socket.emit('badge:update', await badges.countOf(viewer));
    });
  });

  app.addHook('preClose', async () => {
    clearInterval(poll);
    local.disconnectSockets(true);
    await listener?.end();
    await queue;
    await io.of('/').adapter.close();
    io.engine.close();
  });

  return {
    async changed(change) {
      await forget(change);
      // In step, the commit's announcement delivers its rows (or, too big to carry them, wakes a read).
      if (!change.created || !inStep) follow(change);
    },
    announcements(change, audience = 'others', rows) {
      const announced: Announcement = audience === 'others' ? { ...change, instance } : change;
      const withRows = rows && rows.length > 0 ? JSON.stringify({ ...announced, rows }) : undefined;
      return withRows && Buffer.byteLength(withRows) < PAYLOAD_LIMIT ? [withRows] : split(announced);
    },
    async settled() {
      await queue;
    },
    io,
    delivered,
  };
}

async function authenticate(socket: Socket, auth: Auth): Promise<Viewer> {
  const token: unknown = (socket.handshake.auth as { token?: unknown }).token;
  if (typeof token !== 'string' || token.length === 0 || token.length > 4096) throw new AppError('UNAUTHENTICATED', 'The handshake needs auth: { token: <access token> }');
  const user = await auth.verifyToken(token);
  if (!user.permissions.some((granted) => permissionCovers(granted, READ_PERMISSION))) throw new AppError('FORBIDDEN', `Not allowed: ${READ_PERMISSION} is needed`);
  return { userId: user.id, departmentCode: user.departmentCode };
}

// A dedicated LISTEN connection; while it is down, the poll delivers. `onState` hears when it is up (listening) and down.
async function listen(url: string, onChange: (payload: string) => void, onState: (up: boolean) => void): Promise<{ end(): Promise<void> }> {
  let client: pg.Client | undefined;
  let closed = false;
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: 'notification-changes-listener' });
    let down = false;
    const lost = () => {
      if (down) return;
      down = true;
      onState(false);
      if (!closed) setTimeout(() => void connect().catch(() => undefined), 1_000);
    };
    next.on('notification', (message) => onChange(message.payload ?? ''));
    next.on('error', lost);
    next.on('end', lost);
    await next.connect();
    await next.query('LISTEN notification_changes');
    client = next;
    onState(true);
  };
  await connect();
  return {
    async end() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  };
}
