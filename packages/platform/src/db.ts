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
    idleTimeoutMillis: 30_000,
    types: poolTypes,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
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

// Authentication and "database does not exist" do not get better by waiting.
function isTransient(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return !(code === '28P01' || code === '28000' || code === '3D000' || code === '42501');
}
