import type { RedisConnection } from '@archipelago/platform/redis';

/** A key's count in its window, this request included, and the ms left in the window. */
export interface WindowCount {
  readonly current: number;
  readonly ttl: number;
}

/** Counts one request of a key; in-process counts answer at once, Redis's in a promise. */
export type RateCounter = (key: string, timeWindow: number) => WindowCount | Promise<WindowCount>;

/** Fixed-window counts: the window starts with a key's first request and lasts `timeWindow` ms. */
interface Window {
  count: number;
  resetAt: number;
}

// INCR, and start the window with the key's first request; the count and the ms left in the window.
const INCREMENT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {current, ttl}`;

/** Keys the in-process counts keep at most; past it, the window that ends first goes. */
const MAX_LOCAL_KEYS = 10_000;

/**
 * The counts of this process, for when Redis cannot answer (and the only ones without `REDIS_URL`).
 * Bounded: an address spray cannot grow it past MAX_LOCAL_KEYS.
 */
export class LocalWindows {
  private readonly windows = new Map<string, Window>();

  increment(key: string, timeWindow: number, now = Date.now()): { current: number; ttl: number } {
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      this.windows.delete(key);
      if (this.windows.size >= MAX_LOCAL_KEYS) this.evict();
      window = { count: 0, resetAt: now + timeWindow };
      this.windows.set(key, window);
    }
    window.count++;
    return { current: window.count, ttl: window.resetAt - now };
  }

  get size(): number {
    return this.windows.size;
  }

  private evict(): void {
    // Map keeps insertion order, and a key is re-inserted when its window restarts: the first key's
    // window ends first (all limiters share one window length), so it goes. O(1), even under a spray.
    this.windows.delete(this.windows.keys().next().value!);
  }
}

/**
 * The rate-limit counts of the gateway: in Redis (keys prefixed with `nameSpace`), shared by every
 * gateway instance, and in this process while Redis does not answer. So an outage of Redis loosens
 * the limits to one window per instance (the fallback's counts start at zero) but never lifts them:
 * sign-in stays throttled. Without Redis, the process's counts are the only ones (and no promise is made).
 */
export function rateCounter(redis: RedisConnection | undefined, nameSpace: string): RateCounter {
  const local = new LocalWindows();
  const shared = redis && sharedWindows(redis);
  return (key, timeWindow) => {
    if (!shared || !redis.ready()) return local.increment(key, timeWindow);
    return shared(`${nameSpace}${key}`, timeWindow).then(
      ([current, ttl]) => ({ current, ttl }),
      () => local.increment(key, timeWindow),
    );
  };
}

function sharedWindows(redis: RedisConnection): (key: string, timeWindow: number) => Promise<[number, number]> {
  redis.client.defineCommand('incrementWindow', { numberOfKeys: 1, lua: INCREMENT });
  // defineCommand adds the method at run time (EVALSHA, loading the script once).
  const client = redis.client as unknown as { incrementWindow(key: string, timeWindow: number): Promise<[number, number]> };
  return (key, timeWindow) => client.incrementWindow(key, timeWindow);
}
