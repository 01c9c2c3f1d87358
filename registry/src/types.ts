/** Where a service sits; used for documentation and ordering (seed 001 rule 11). */
export type Layer = 'platform' | 'shared' | 'domain';

/**
 * How the instances of a service share a subscription (DESIGN.md §4): `group` — one stored cursor,
 * one instance applies each event, in the same transaction as the cursor (exactly-once effect on
 * the service's database); `broadcast` — every instance sees every event from the moment it
 * starts, position kept in memory (per-instance effects: dropping a cache entry, a socket push).
 */
export type SubscriptionMode = 'group' | 'broadcast';

/** A stream of events a service reads from another service. */
export interface EventSubscription {
  /** Registry key of the producing service. */
  readonly from: string;
  readonly mode: SubscriptionMode;
  /** Event types, e.g. `label.created`. */
  readonly types: readonly string[];
}

/** A read-only copy of another service's entity, kept in sync by events (DESIGN.md §5). */
export interface LookupDefinition {
  /** Table in the consumer's schema, e.g. `labels_lookup`. */
  readonly table: string;
  /** Registry key of the service that owns the entity. */
  readonly from: string;
  /** Entity name as it appears in event types, e.g. `label`. */
  readonly entity: string;
  /** Natural key copied from the master, e.g. `code`. */
  readonly key: string;
  /** Columns copied besides the key. */
  readonly columns: readonly string[];
}

/**
 * Work a service runs on a schedule (DESIGN.md §11): each tick runs once across all the service's
 * instances, under a PostgreSQL advisory lock, its status kept in the service's database.
 */
export interface JobDefinition {
  /** e.g. `lookups.reconcile`; unique within the service; the service registers its handler by it. */
  readonly name: string;
  /** Cron expression in UTC (5 fields, or 6 with seconds first), e.g. `0 2 * * *`. */
  readonly schedule: string;
  /** What the job does, for `jobs list`. */
  readonly description: string;
  /** Environment variable that replaces the schedule: a cron expression, `HH:MM` (daily, UTC) or `off`. */
  readonly scheduleVariable?: string;
}

/** One service, declared once; every generated file and every runtime URL derives from it. */
export interface ServiceDefinition {
  /** Compose service name and hostname on the container network. */
  readonly hostname: string;
  /** Port the service listens on; `<KEY>_PORT` overrides it at run time. */
  readonly port: number;
  /** PostgreSQL database (snake_case of the key), or `""` for a stateless service. */
  readonly database: string;
  readonly layer: Layer;
  /** Human-readable name. */
  readonly label: string;
  /** Public route prefixes this service handles, without trailing slash; the gateway routes them. */
  readonly routes: readonly string[];
  /** Services this one calls and starts after; each gets a `<KEY>_URL` variable. */
  readonly dependsOn?: readonly string[];
  /**
   * Services this one calls only while serving requests (a run-time dependency: no start order, so
   * they may depend on this one); each gets a `<KEY>_URL` variable, and is a 503 while it is down.
   */
  readonly calls?: readonly string[];
  /** Extra environment variables beyond the derived ones. */
  readonly extraEnv?: Readonly<Record<string, string>>;
  readonly needsRedis?: boolean;
  readonly events?: {
    readonly publishes?: readonly string[];
    readonly consumes?: readonly EventSubscription[];
  };
  readonly lookups?: readonly LookupDefinition[];
  /** Scheduled jobs; a service with jobs needs a database (their lock and status live there). */
  readonly jobs?: readonly JobDefinition[];
  /**
   * Tables published to the reporting database by logical replication (DESIGN.md §8): a table
   * name publishes every column (new ones follow); `{ table, exclude }` publishes all but the
   * excluded columns through a publication column list (secrets never leave the database).
   */
  readonly reporting?: { readonly publishes: readonly ReportingTable[] };
}

/** One table published to reporting. */
export type ReportingTable = string | { readonly table: string; readonly exclude: readonly string[] };

/** A validated service with its key and effective port. */
export interface Service extends ServiceDefinition {
  readonly key: string;
  readonly stateful: boolean;
}

/** The validated registry: services in dependency order (dependencies first). */
export interface Registry {
  readonly services: readonly Service[];
  service(key: string): Service;
}
