import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '@archipelago/platform/redis';
import type { NotificationRepository, NotificationView, Position, UnreadCounts, Viewer } from './notification.repository.ts';

/**
 * Where cached unread counts live. A lookup hands out a token per viewer (its generation); a fill
 * is kept only under the token it was read with, so a count read while a change happened is
 * never served later. Invalidation moves a user's or a department's generation.
 */
export interface BadgeCache {
  lookup(viewers: readonly Viewer[]): Promise<{ hits: Map<string, UnreadCounts>; tokens: Map<string, string> }>;
  /** `at`: the newest notification the counts' snapshot held (they count it and everything before it, nothing after). */
  store(fills: readonly { viewer: Viewer; token: string; counts: UnreadCounts; at?: Position }[]): Promise<void>;
  userChanged(userId: string): Promise<void>;
  departmentChanged(departmentCode: string): Promise<void>;
  /**
   * New notifications, delivered in commit order: moves the generations of their users and
   * departments and answers the viewers' counts after them where a cached count known up to a
   * position says it without a query (each of the rows after that position added), kept under the
   * new generation. Without it, the generations move and the counts are read again.
   */
  added?(viewers: readonly Viewer[], rows: readonly NotificationView[]): Promise<Map<string, UnreadCounts>>;
}

const isAfter = (a: Position, b: Position) => a.at > b.at || (a.at === b.at && a.id > b.id);
const concerns = (viewer: Viewer, row: NotificationView) => (row.user_id ? row.user_id === viewer.userId : row.department_code !== null && row.department_code === viewer.departmentCode);

/** Counts cached in this process (the default; with several instances, each follows the others' changes by LISTEN). */
export function memoryBadgeCache(): BadgeCache {
  const cache = new Map<string, { token: string; counts: UnreadCounts; at?: Position }>();
  const userGeneration = new Map<string, number>();
  const departmentGeneration = new Map<string, number>();
  const tokenOf = (viewer: Viewer) => `${userGeneration.get(viewer.userId) ?? 0}/${viewer.departmentCode ?? ''}/${viewer.departmentCode === null ? '' : departmentGeneration.get(viewer.departmentCode) ?? 0}`;
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  return {
    async lookup(viewers) {
      const hits = new Map<string, UnreadCounts>();
      const tokens = new Map<string, string>();
      for (const viewer of viewers) {
        const token = tokenOf(viewer);
        const hit = cache.get(viewer.userId);
        if (hit?.token === token) hits.set(viewer.userId, { ...hit.counts });
        else tokens.set(viewer.userId, token);
      }
      return { hits, tokens };
    },
    async store(fills) {
      for (const { viewer, token, counts, at } of fills) {
        if (token !== tokenOf(viewer)) continue;
        if (cache.size >= 100_000) cache.clear();
        cache.set(viewer.userId, { token, counts: { ...counts }, at });
      }
    },
    async userChanged(userId) {
      bump(userGeneration, userId);
      cache.delete(userId);
    },
    async departmentChanged(departmentCode) {
      bump(departmentGeneration, departmentCode);
    },
    // In one synchronous step: no other change can move a generation between the read and the store.
    async added(viewers, rows) {
      const advanced = new Map<string, { viewer: Viewer; counts: UnreadCounts; at: Position }>();
      for (const viewer of viewers) {
        const hit = cache.get(viewer.userId);
        if (!hit?.at || hit.token !== tokenOf(viewer)) continue;
        const counts = { ...hit.counts };
        let at = hit.at;
        for (const row of rows) {
          const position = { at: row.created_at, id: row.id };
          if (!isAfter(position, hit.at)) continue; // counted already
          if (isAfter(position, at)) at = position;
          if (!concerns(viewer, row)) continue;
          counts[row.priority]++;
          counts.total++;
        }
        advanced.set(viewer.userId, { viewer, counts, at });
      }
      for (const row of rows) {
        if (row.user_id) bump(userGeneration, row.user_id);
        else if (row.department_code) bump(departmentGeneration, row.department_code);
      }
      const answered = new Map<string, UnreadCounts>();
      for (const [userId, { viewer, counts, at }] of advanced) {
        cache.set(userId, { token: tokenOf(viewer), counts, at });
        answered.set(userId, { ...counts });
      }
      return answered;
    },
  };
}

const ENTRY_TTL_SECONDS = 3_600;
const GENERATION_TTL_SECONDS = 86_400;

/**
 * Counts cached in Redis, shared by every instance. A generation is a random id per user and per
 * department, and an entry's key holds both: moving a generation (one SET) orphans every entry
 * made under the old one, a department's members included, without finding them. A generation
 * Redis lost (restart, eviction) comes back as a new random id, so no old entry is ever read again.
 * While Redis cannot be reached, counts come from the tables (exact, uncached); an invalidation
 * that failed is retried before this instance reads the cache again, and every other instance
 * repeats each invalidation when it hears of the change (LISTEN), so one instance cut off from
 * Redis does not leave a stale entry for the others.
 */
export function redisBadgeCache(redis: RedisConnection, prefix = 'notification:badges:v1'): BadgeCache {
  const userKey = (id: string) => `${prefix}:gen:user:${id}`;
  const departmentKey = (code: string) => `${prefix}:gen:dept:${code}`;
  const entryKey = (viewer: Viewer, token: string) => `${prefix}:counts:${viewer.userId}:${viewer.departmentCode ?? ''}:${token}`;
  const pending = new Set<string>();
  const move = (key: string) => redis.client.set(key, randomUUID(), 'EX', GENERATION_TTL_SECONDS);
  const flushPending = async (): Promise<boolean> => {
    for (const key of [...pending]) {
      await move(key);
      pending.delete(key);
    }
    return true;
  };
  const invalidate = async (key: string) => {
    try {
      await move(key);
    } catch {
      pending.add(key);
    }
  };
  // The current generation, or a new one if Redis has none (SET … NX GET answers the old value, or null when it set ours).
  const generation = (key: string): Promise<string> => {
    const fresh = randomUUID();
    return redis.client.set(key, fresh, 'EX', GENERATION_TTL_SECONDS, 'NX', 'GET').then((old) => old ?? fresh);
  };
  return {
    async lookup(viewers) {
      const hits = new Map<string, UnreadCounts>();
      const tokens = new Map<string, string>();
      if (viewers.length === 0 || !redis.ready() || !(await flushPending().catch(() => false))) return { hits, tokens };
      try {
        const found = await Promise.all(
          viewers.map(async (viewer) => {
            const [user, department] = await Promise.all([generation(userKey(viewer.userId)), viewer.departmentCode === null ? '' : generation(departmentKey(viewer.departmentCode))]);
            return { viewer, token: `${user}/${department}` };
          }),
        );
        const entries = await redis.client.mget(found.map(({ viewer, token }) => entryKey(viewer, token)));
        found.forEach(({ viewer, token }, i) => {
          const entry = entries[i];
          if (entry) hits.set(viewer.userId, JSON.parse(entry) as UnreadCounts);
          else tokens.set(viewer.userId, token);
        });
        return { hits, tokens };
      } catch {
        return { hits: new Map(), tokens: new Map() };
      }
    },
    async store(fills) {
      if (fills.length === 0) return;
      const batch = redis.client.pipeline();
      for (const { viewer, token, counts } of fills) batch.set(entryKey(viewer, token), JSON.stringify(counts), 'EX', ENTRY_TTL_SECONDS);
      await batch.exec().catch(() => undefined);
    },
    userChanged: (userId) => invalidate(userKey(userId)),
    departmentChanged: (departmentCode) => invalidate(departmentKey(departmentCode)),
  };
}

/**
 * Unread counts, exact by construction: every change moves the generations it may alter (a
 * user's, or a whole department's) before anyone is told, and a count read while a change
 * happened is returned but not kept.
 */
export function badgeCounter(repository: NotificationRepository, cache: BadgeCache = memoryBadgeCache()) {
  return {
    /** Counts of many viewers at once; misses are counted in one query. */
    async countsOf(viewers: readonly Viewer[]): Promise<Map<string, UnreadCounts>> {
      const { hits, tokens } = await cache.lookup(viewers);
      const missing = viewers.filter((viewer) => !hits.has(viewer.userId));
      if (missing.length === 0) return hits;
      const { counts: fresh, at } = await repository.unreadCountsAt(missing);
      const fills = missing.flatMap((viewer) => {
        const token = tokens.get(viewer.userId);
        return token === undefined ? [] : [{ viewer, token, counts: fresh.get(viewer.userId)!, at }];
      });
      await cache.store(fills);
      for (const viewer of missing) hits.set(viewer.userId, fresh.get(viewer.userId)!);
      return hits;
    },
    async countOf(viewer: Viewer): Promise<UnreadCounts> {
      return (await this.countsOf([viewer])).get(viewer.userId)!;
    },
    /**
     * New notifications are being delivered (in commit order, `rows` after every earlier delivery):
     * their users' and departments' cached counts move on, and the viewers' counts after them are
     * answered, from the cache where it can tell (no query), else counted.
     */
    async countsAfter(viewers: readonly Viewer[], rows: readonly NotificationView[]): Promise<Map<string, UnreadCounts>> {
      let known = new Map<string, UnreadCounts>();
      if (cache.added) known = await cache.added(viewers, rows);
      else {
        const users = new Set(rows.flatMap((row) => (row.user_id ? [row.user_id] : [])));
        const departments = new Set(rows.flatMap((row) => (!row.user_id && row.department_code ? [row.department_code] : [])));
        await Promise.all([...[...users].map((id) => cache.userChanged(id)), ...[...departments].map((code) => cache.departmentChanged(code))]);
      }
      const rest = viewers.filter((viewer) => !known.has(viewer.userId));
      for (const [userId, counts] of rest.length > 0 ? await this.countsOf(rest) : []) known.set(userId, counts);
      return known;
    },
    /** A user's notifications or receipts changed. */
    userChanged: (userId: string): Promise<void> => cache.userChanged(userId),
    /** A department broadcast was added or changed. */
    departmentChanged: (departmentCode: string): Promise<void> => cache.departmentChanged(departmentCode),
  };
}

export type BadgeCounter = ReturnType<typeof badgeCounter>;
