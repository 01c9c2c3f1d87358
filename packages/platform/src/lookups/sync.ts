import { sql, type Kysely } from 'kysely';
import type { LookupDefinition } from '@archipelago/registry';
import { AppError } from '../errors.ts';
import { startConsumer, type Consumer, type ConsumerOptions } from '../events/consumer.ts';
import type { EventTransport } from '../events/transport.ts';
import type { Logger } from '../logger.ts';
import { StartupError } from '../startup.ts';
import { lookupTableMatches } from './align.ts';
import { lookupProjection } from './projection.ts';
import { reconcileLookup, type DriftReport, type ExportReader } from './reconcile.ts';

export interface LookupSyncOptions {
  /** Registry key of the consuming service, e.g. `core`; names its consumers. */
  readonly service: string;
  readonly db: Kysely<unknown>;
  /** The service's lookups, as the registry declares them. */
  readonly lookups: readonly LookupDefinition[];
  /** How the producers' events arrive. */
  readonly transport: EventTransport;
  /** How the producers' full exports are read (`httpExportReader`), for snapshots and reconciliation. */
  readonly readExport: ExportReader;
  readonly logger?: Logger;
  /** Consumer tuning (batch size, long-poll wait, retries). */
  readonly consumer?: Pick<ConsumerOptions<unknown>, 'batchSize' | 'waitMs' | 'maxAttempts' | 'backoffMs'>;
}

/** The running sync of a service's lookup tables. */
export interface LookupSync {
  /** Repairs the named lookup (or all) from the master's export, reporting what differed. */
  reconcile(table?: string): Promise<DriftReport[]>;
  /** Reports what differs, changing nothing. */
  drift(table?: string): Promise<DriftReport[]>;
  /** One consumer per producer, named `<service>.lookups.<producer>`. */
  readonly consumers: readonly Consumer[];
  stop(): Promise<void>;
}

/**
 * Keeps every declared lookup table in sync with its master (docs/architecture.md#lookup-tables): checks the tables
 * match the registry, snapshots empty ones from the master's export and follows each producer's
 * events. The full reconciliation (`reconcile`) runs as the service's `lookups.reconcile` job.
 */
export async function startLookupSync(options: LookupSyncOptions): Promise<LookupSync> {
  const { db, lookups, logger } = options;
  await assertTablesMatchRegistry(db, options.service, lookups);
  const { readExport } = options;

  const select = (table?: string) => {
    if (table === undefined) return lookups;
    const lookup = lookups.find((candidate) => candidate.table === table);
    if (!lookup) throw new AppError('NOT_FOUND', `${options.service} keeps no lookup "${table}" (it keeps ${lookups.map((l) => l.table).join(', ')})`);
    return [lookup];
  };
  const compare = async (table: string | undefined, repair: boolean) => {
    const reports: DriftReport[] = [];
    for (const lookup of select(table)) reports.push(await reconcileLookup(db, lookup, readExport, { repair }));
    return reports;
  };
  const reconcile = async (table?: string) => {
    const reports = await compare(table, true);
    for (const report of reports) {
      const drift = report.missing.length + report.stale.length + report.extra.length;
      if (drift > 0) logger?.warn({ lookup: report.lookup, missing: report.missing.length, stale: report.stale.length, extra: report.extra.length }, 'lookup drift repaired');
    }
    return reports;
  };

  const consumers = [...new Set(lookups.map((lookup) => lookup.from))].map((producer) => {
    const name = `${options.service}.lookups.${producer}`;
    return startConsumer<unknown>({
      ...options.consumer,
      name,
      subscription: options.transport.subscribe({ source: producer, group: name }),
      db,
      handle: lookupProjection(lookups.filter((lookup) => lookup.from === producer)),
      // Events pruned before this consumer saw them: the export has the truth, the events after it follow.
      onGap: async () => {
        for (const lookup of lookups.filter((l) => l.from === producer)) await reconcile(lookup.table);
      },
      onError: (error, context) => logger?.warn({ err: error, producer, event: context.event?.id, attempt: context.attempt }, 'lookup event not applied yet'),
    });
  });

  // Empty tables are filled from the export; retried until the master answers.
  const snapshot = snapshotEmptyTables(db, lookups, (table) => compare(table, true), logger);

  return {
    reconcile,
    drift: (table) => compare(table, false),
    consumers,
    async stop() {
      snapshot.cancel();
      await Promise.all(consumers.map((consumer) => consumer.stop()));
      await snapshot.done;
    },
  };
}

/** The `lookups.reconcile` job: repairs every lookup table; its result counts what differed. */
export function reconcileLookupsJob(sync: LookupSync): () => Promise<{ lookups: number; missing: number; stale: number; extra: number }> {
  return async () => {
    const reports = await sync.reconcile();
    const count = (pick: (report: DriftReport) => readonly string[]) => reports.reduce((total, report) => total + pick(report).length, 0);
    return { lookups: reports.length, missing: count((r) => r.missing), stale: count((r) => r.stale), extra: count((r) => r.extra) };
  };
}

async function assertTablesMatchRegistry(db: Kysely<unknown>, service: string, lookups: readonly LookupDefinition[]): Promise<void> {
  const problems: string[] = [];
  for (const lookup of lookups) {
    const state = await lookupTableMatches(db, lookup);
    if (!state.matches) problems.push(state.exists ? `${lookup.table} has other columns or types than declared` : `table ${lookup.table} does not exist`);
  }
  if (problems.length > 0) {
    throw new StartupError(`${service}'s lookup tables do not match the registry: ${problems.join('; ')}. Run its migrations (npm run cli -- db migrate), which create them from the declaration.`);
  }
}

function snapshotEmptyTables(
  db: Kysely<unknown>,
  lookups: readonly LookupDefinition[],
  repair: (table: string) => Promise<DriftReport[]>,
  logger: Logger | undefined,
): { done: Promise<void>; cancel(): void } {
  let cancelled = false;
  let wake: (() => void) | undefined;
  const done = (async () => {
    for (const lookup of lookups) {
      for (let attempt = 1; !cancelled; attempt++) {
        try {
          const empty = (await sql`SELECT 1 FROM ${sql.id(lookup.table)} LIMIT 1`.execute(db)).rows.length === 0;
          if (empty) {
            const [report] = await repair(lookup.table);
            logger?.info({ lookup: lookup.table, rows: report?.missing.length }, 'lookup snapshot taken');
          }
          break;
        } catch (error) {
          logger?.warn({ err: error, lookup: lookup.table, attempt }, 'lookup snapshot failed; retrying');
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, Math.min(500 * 2 ** attempt, 30_000)).unref();
          });
        }
      }
    }
  })();
  return {
    done,
    cancel() {
      cancelled = true;
      wake?.();
    },
  };
}
