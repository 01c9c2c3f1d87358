import { once } from 'node:events';
import * as ioredis from 'ioredis';
import { redactUrl } from './db.ts';
import type { HttpServer } from './http.ts';

// In the bundle `npm start` runs (esbuild's CommonJS interop) the named export is missing; the default is the class.
const Redis = typeof ioredis.Redis === 'function' ? ioredis.Redis : (ioredis.default as unknown as typeof ioredis.Redis);
type Redis = ioredis.Redis;

/**
 * How commands behave while Redis is unreachable:
 * - `requests` (caches, rate limits): a command fails at once, so a request falls back instead of waiting;
 * - `streams` (the Socket.IO adapter): commands wait in the client's queue and run, in order, once
 *   Redis is back, so a blocking reader never spins and nothing published is dropped by the client.
 */
export type RedisMode = 'requests' | 'streams';

export interface RedisOptions {
  /** Named in log lines and in `CLIENT LIST` (e.g. `gateway.rate-limits`). */
  readonly name: string;
  readonly mode?: RedisMode;
  readonly logger?: RedisLogger;
  /** Closes the connection with this app (its `onClose` hook). */
  readonly app?: HttpServer;
}

/** What the connection logs through (a pino or Fastify logger). */
export interface RedisLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** One Redis connection of a service, and whether it serves now. */
export interface RedisConnection {
  readonly client: Redis;
  /** The URL without its password, for log lines. */
  readonly target: string;
  /** Whether commands are served now (connected and ready). */
  ready(): boolean;
  /** Resolves true once ready, or false after `timeoutMs` (it keeps trying in the background either way). */
  whenReady(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 5_000;

// 100 ms, 200 ms, 400 ms … 5 s, with jitter so instances do not reconnect in step.
const backoff = (attempt: number): number => Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(attempt - 1, 6)) * (0.75 + Math.random() / 2);

/**
 * The platform's one way to reach Redis (`REDIS_URL`): reconnects forever with backoff, logs each
 * outage once (without the URL's password) and its end, never throws from its event emitter,
 * and is closed with the app. A service decides what a request does while it is down (see
 * README "Redis"): fall back, or answer 503.
 *
 * @example
 * const redis = connectRedis(env.REDIS_URL, { name: 'notification.badges', logger, app });
 * if (redis.ready()) await redis.client.get('key');
 */
export function connectRedis(url: string, options: RedisOptions): RedisConnection {
  const target = redactUrl(url);
  const waits = options.mode === 'streams';
  const client = new Redis(url, {
    connectionName: options.name,
    connectTimeout: 2_000,
    retryStrategy: backoff,
    // A command during an outage: fail now (requests) or wait for the reconnection (streams).
    enableOfflineQueue: waits,
    maxRetriesPerRequest: waits ? null : 1,
    commandTimeout: waits ? undefined : 2_000,
  });
  const log = options.logger;
  const fields = { redis: target, connection: options.name };
  let down = false;
  let closed = false;
  const lost = (error?: Error) => {
    if (down || closed) return;
    down = true;
    log?.warn({ ...fields, err: error }, 'Redis unreachable; reconnecting with backoff (what needs it falls back meanwhile)');
  };
  client.on('error', lost);
  client.on('close', () => lost());
  client.on('ready', () => {
    if (down) log?.info(fields, 'Redis reachable again');
    down = false;
  });
  const connection: RedisConnection = {
    client,
    target,
    ready: () => client.status === 'ready',
    whenReady: (timeoutMs) =>
      client.status === 'ready'
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              client.off('ready', onReady);
              resolve(false);
            }, timeoutMs);
            const onReady = () => {
              clearTimeout(timer);
              resolve(true);
            };
            client.once('ready', onReady);
          }),
    async close() {
      if (closed) return;
      closed = true;
      if (client.status === 'end') return;
      // A client between reconnection attempts may never emit 'end' once disconnected: wait 1 s at most.
      const ended = Promise.race([once(client, 'end'), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
      await ended;
    },
  };
  options.app?.addHook('onClose', () => connection.close());
  return connection;
}
