import { sql, type Kysely } from 'kysely';
import type { ReferenceSource } from './validator.ts';
import type { ServiceCredentials } from '../internal-auth/credentials.ts';
import { internalFetch } from '../internal-auth/fetch.ts';

/**
 * References to codes the service keeps a lookup table of: checked locally, active rows only
 * (`active`: the flag column, default `is_active`; `false` for a table without one).
 */
export function lookupReferences(db: Kysely<unknown>, table: string, options: { key?: string; owner?: string; active?: string | false } = {}): ReferenceSource {
  const key = options.key ?? 'code';
  const active = options.active ?? 'is_active';
  return {
    owner: options.owner ?? table,
    async resolve(values) {
      const result = await sql<{ key: string }>`
        SELECT ${sql.id(key)} AS key FROM ${sql.id(table)}
        WHERE ${sql.id(key)}::text = ANY(${values}::text[]) AND ${active === false ? sql`true` : sql.id(active)}`.execute(db);
      return new Set(result.rows.map((row) => row.key));
    },
  };
}

export interface CachedReferencesOptions {
  readonly owner: string;
  /** Asks the owner which of these values exist; throws when the owner cannot answer. */
  readonly resolve: (values: readonly string[]) => Promise<ReadonlySet<string>>;
  /** How long a found value is trusted (users 5 min, departments 1 h). */
  readonly ttlMs: number;
  /** How long a missing value is remembered; short, so a new row is soon usable. */
  readonly negativeTtlMs: number;
  readonly now?: () => number;
  /** Most values per request to the owner. */
  readonly maxBatch?: number;
}

/** A source whose answers can be dropped when the owner announces a change. */
export interface CachedReferenceSource extends ReferenceSource {
  /** Forgets what is known of `value` (call it on the owner's `*.updated`/`*.deleted` events). */
  invalidate(value: string): void;
  /** Forgets everything (the owner's events were missed, e.g. pruned before they were seen). */
  invalidateAll(): void;
  readonly stats: { readonly hits: number; readonly misses: number; readonly requests: number };
}

/**
 * References to things owned by another service, checked through its batch API
 * (docs/architecture.md#references-across-services): answers are TTL-cached, misses briefly; values asked for by concurrent
 * requests in the same tick go to the owner in one request, and a value already in flight is
 * not asked for twice.
 */
export function cachedReferences(options: CachedReferencesOptions): CachedReferenceSource {
  const now = options.now ?? Date.now;
  const known = new Map<string, { exists: boolean; until: number }>();
  const inFlight = new Map<string, Promise<boolean>>();
  interface Waiter {
    resolve(exists: boolean): void;
    reject(error: unknown): void;
  }
  type Waiters = Map<string, Waiter>;
  let queued: Waiters | undefined;
  const stats = { hits: 0, misses: 0, requests: 0 };

  const flush = async (batch: Waiters) => {
    const values = [...batch.keys()];
    const maxBatch = options.maxBatch ?? 500;
    for (let start = 0; start < values.length; start += maxBatch) {
      const chunk = values.slice(start, start + maxBatch);
      try {
        stats.requests++;
        const found = await options.resolve(chunk);
        for (const value of chunk) {
          const exists = found.has(value);
          known.set(value, { exists, until: now() + (exists ? options.ttlMs : options.negativeTtlMs) });
          batch.get(value)!.resolve(exists);
        }
      } catch (error) {
        for (const value of chunk) batch.get(value)!.reject(error);
      } finally {
        for (const value of chunk) inFlight.delete(value);
      }
    }
  };

  const ask = (value: string): Promise<boolean> => {
    const cached = known.get(value);
    if (cached && cached.until > now()) {
      stats.hits++;
      return Promise.resolve(cached.exists);
    }
    stats.misses++;
    const pending = inFlight.get(value);
    if (pending) return pending;
    if (!queued) {
      const batch = (queued = new Map<string, Waiter>());
      setImmediate(() => {
        queued = undefined;
        void flush(batch);
      });
    }
    const batch = queued;
    const promise = new Promise<boolean>((resolve, reject) => batch.set(value, { resolve, reject }));
    inFlight.set(value, promise);
    return promise;
  };

  return {
    owner: options.owner,
    stats,
    async resolve(values) {
      const answers = await Promise.all(values.map(async (value) => [value, await ask(value)] as const));
      return new Set(answers.filter(([, exists]) => exists).map(([value]) => value));
    },
    invalidate(value) {
      known.delete(value);
    },
    invalidateAll() {
      known.clear();
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** IAM's batch user validation, `POST /internal/v1/users/validate`: active users only. */
export function iamUserResolver(iamUrl: string, credentials: ServiceCredentials, timeoutMs = 2_000) {
  return async (ids: readonly string[]): Promise<ReadonlySet<string>> => {
    const uuids = ids.filter((id) => UUID.test(id)); // anything else names no user
    if (uuids.length === 0) return new Set();
    const response = await internalFetch(credentials, 'iam', new URL('/internal/v1/users/validate', iamUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: uuids }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`iam answered ${response.status} to user validation`);
    const body = (await response.json()) as { users: { id: string; active: boolean }[] };
    return new Set(body.users.filter((user) => user.active).map((user) => user.id));
  };
}

/**
 * Codes checked through their owner's batch API (`POST <path>` with `{ codes }`, answering
 * `{ items: [{ code, active }] }`, as masterdata's `/internal/v1/<table>/validate`): active ones only.
 */
export function ownerCodeResolver(options: { owner: string; url: string; path: string; credentials: ServiceCredentials; timeoutMs?: number }) {
  return async (codes: readonly string[]): Promise<ReadonlySet<string>> => {
    const response = await internalFetch(options.credentials, options.owner, new URL(options.path, options.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ codes }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 2_000),
    });
    if (!response.ok) throw new Error(`${options.owner} answered ${response.status} to ${options.path}`);
    const body = (await response.json()) as { items: { code: string; active: boolean }[] };
    return new Set(body.items.filter((item) => item.active).map((item) => item.code));
  };
}
