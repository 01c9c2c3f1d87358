import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';

// int8 arrives as a string by default. In our pools it is a number: counts, versions and
// sequences here stay far below 2^53. Set per pool, so importing the platform changes nothing global.
const INT8_OID = 20;
const poolTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
};

/** A connection URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Thrown when a database cannot be reached after every retry. */
export class DatabaseUnreachableError extends Error {
  constructor(url: string, attempts: number, seconds: number, cause: unknown, hint: string) {
    super(
      `Cannot reach PostgreSQL at ${redactUrl(url)} after ${attempts} attempts over ${seconds.toFixed(1)} s ` +
        `(last error: ${describePgError(cause)}). ${hint}`,
      { cause },
    );
    this.name = 'DatabaseUnreachableError';
  }
}

/** A short, human description of a pg or network error. */
export function describePgError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describePgError(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    return code ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

export interface DatabaseOptions {
  /** Pool size; a service's own pool, so keep it small. */
  max?: number;
  applicationName?: string;
}

/**
 * A pooled connection unused this long is closed. Short, because each open connection is a
 * PostgreSQL backend (~15 MB of RSS): the pool hands out its most recently used connection
 * first, so the one a service's pollers keep busy stays open, and the extra ones a burst opened
 * (start-up, a load spike) go back to PostgreSQL two seconds after the burst.
 */
const POOL_IDLE_TIMEOUT_MS = 2_000;

/**
 * Opens a Kysely instance over a `pg` pool for one service, connecting with that service's role.
 *
 * @example
 * const db = createDatabase<CoreDatabase>(config.DATABASE_URL, { applicationName: 'core' });
 */
export function createDatabase<DB>(url: string, options: DatabaseOptions = {}): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'archipelago',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    types: poolTypes,
  });
  // A client losing its connection must not crash the process, idle (the pool's 'error') or
  // checked out (the client's own 'error', which pg emits with no listener once it leaves the
  // pool): the query in flight fails, and the pool discards the client when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

/** Readiness probe: one round trip. */
export async function checkDatabase<DB>(db: Kysely<DB>): Promise<void> {
  await sql`select 1`.execute(db);
}

/**
 * Waits until `probe` succeeds, retrying with exponential backoff, then gives up with a
 * DatabaseUnreachableError that says what to check.
 */
export async function waitForDatabase(
  url: string,
  options: { attempts?: number; hint?: string; onRetry?: (attempt: number, delayMs: number, error: unknown) => void } = {},
): Promise<void> {
  const attempts = options.attempts ?? 8;
  const started = Date.now();
  let lastError: unknown;
  let made = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    made = attempt;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      lastError = error;
      if (!isTransient(error)) break;
      if (attempt < attempts) {
        const delay = Math.min(250 * 2 ** (attempt - 1), 4_000);
        options.onRetry?.(attempt, delay, error);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw new DatabaseUnreachableError(
    url,
    made,
    (Date.now() - started) / 1000,
    lastError,
    options.hint ?? 'Check that PostgreSQL is running and that the URL, user and password are right.',
  );
}

/**
 * SQLSTATEs of a database that cannot serve now: class 08 (a lost or refused connection), the
 * server shutting down or starting (57P01–03), and class 53 (out of connections, memory or disk).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53...)$/;
/** SQLSTATEs of a transaction the server aborted because of a concurrent one: run again, it may pass. */
const CONFLICT_SQLSTATE = new Set(['40001', '40P01', '55P03']);
/** Node network errors that mean "the database is not there (now)". */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** pg's own messages for a connection that broke or never came (they carry no code). */
const UNAVAILABLE_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable)/;

/**
 * True when `error` means the database cannot be reached right now (restarting, connection
 * cut, pool timed out), as opposed to a bug or a bad query: the HTTP layer answers such errors
 * with 503 and Retry-After. Follows `cause` chains and AggregateErrors.
 */
export function isConnectionError(error: unknown, depth = 0): boolean {
  if (depth > 5 || error === null || typeof error !== 'object') return false;
  if (error instanceof AggregateError && error.errors.some((e) => isConnectionError(e, depth + 1))) return true;
  const { code, message, cause } = error as { code?: unknown; message?: unknown; cause?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
  return isConnectionError(cause, depth + 1);
}

/**
 * True when PostgreSQL rolled the transaction back to settle a conflict with a concurrent one (a
 * serialization failure, a deadlock, a lock it could not get in time): nothing of it was kept and
 * running it again is safe, so the HTTP layer answers 503 with Retry-After rather than 500.
 */
export function isTransactionConflict(error: unknown, depth = 0): boolean {
  if (depth > 5 || error === null || typeof error !== 'object') return false;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  return (typeof code === 'string' && CONFLICT_SQLSTATE.has(code)) || isTransactionConflict(cause, depth + 1);
}

// Authentication and "database does not exist" do not get better by waiting.
function isTransient(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return !(code === '28P01' || code === '28000' || code === '3D000' || code === '42501');
}
