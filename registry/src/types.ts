import type { TObject } from 'typebox';

/**
 * A backing service a service talks to; each brings its variables (platform's `backingConfigSchemas`)
 * and, in the compose files, its container: `redis` (REDIS_URL), `rabbitmq` (EVENT_TRANSPORT,
 * RABBITMQ_URL), `objectStorage` (OBJECT_STORAGE_URL), `mail` (SMTP_URL, MAIL_FROM, MAIL_DIR).
 */
export type BackingService = 'redis' | 'rabbitmq' | 'objectStorage' | 'mail';

/** Where a service sits; used for documentation and ordering (seed 001 rule 11). */
export type Layer = 'platform' | 'shared' | 'domain';

/**
 * How the instances of a service share a subscription (DESIGN.md §4): `group` — one stored cursor,
 * one instance applies each event, in the same transaction as the cursor (exactly-once effect on
 * the service's database); `broadcast` — every instance sees every event from the moment it
 * starts, position kept in memory (per-instance effects: dropping a cache entry, a socket push).
 */
export type SubscriptionMode = 'group' | 'broadcast';

/**
 * A stream of events a service reads from another service, applied by the service's handler of the
 * same name (`handlers: { 'notification.orders': … }`), which receives only these types.
 */
export interface EventSubscription {
  /** `<service>.<what>`, e.g. `notification.orders`; keys a group's cursor and names the handler. */
  readonly name: string;
  /** Registry key of the producing service. */
  readonly from: string;
  readonly mode: SubscriptionMode;
  /** Event types, e.g. `label.created`, or every type of an entity, `label.*`. */
  readonly types: readonly string[];
}

/**
 * A subscription the platform runs for a service: its declared `consumes` (`for: 'handler'`), one
 * group per producer its lookups copy from (`<service>.lookups.<producer>`), and, for a service
 * that verifies tokens, the identity provider's change broadcast (`<service>.identity-changes`).
 */
export interface ServiceSubscription extends EventSubscription {
  readonly for: 'handler' | 'lookups' | 'identity';
}

/**
 * The SQL type of a lookup column. Only types whose values compare exactly with their JSON form
 * (reconciliation compares the copy with the master's export), so text for dates and decimals.
 */
export type LookupColumnType = 'text' | 'integer' | 'boolean' | 'uuid';

/**
 * A read-only copy of another service's entity, kept in sync by events (docs/architecture.md#lookup-tables).
 * The platform creates the table from this declaration (and re-creates it, to be refilled from the
 * export, when the declaration changes); no migration declares it.
 */
export interface LookupDefinition {
  /** Table in the consumer's schema, e.g. `labels_lookup`. */
  readonly table: string;
  /** Registry key of the service that owns the entity. */
  readonly from: string;
  /** Entity name as it appears in event types, e.g. `label`. */
  readonly entity: string;
  /** The copy's key column, e.g. `code`: the master's aggregate id (`events.aggregateIds`), unless `keyFrom` maps it. */
  readonly key: string;
  /** SQL type of the key column (default `text`). */
  readonly keyType?: LookupColumnType;
  /**
   * The master's field the key is copied from, when it is not the aggregate id its events carry
   * (e.g. `id` for a table keyed by `order_id`); must be in the entity's event payload.
   */
  readonly keyFrom?: string;
  /** Columns copied besides the key, with their SQL types, e.g. `{ name: 'text', is_active: 'boolean' }`. */
  readonly columns: Readonly<Record<string, LookupColumnType>>;
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

/** A path prefix a service serves through the gateway. */
export interface RouteDefinition {
  /** e.g. `/api/v1/labels`, without trailing slash; the gateway forwards it and everything under it. */
  readonly prefix: string;
  /** Passed on without a token (signing in, public keys); the service checks what it needs itself. */
  readonly public?: boolean;
  /** Connections under it may be upgraded (to WebSocket); on no other route. */
  readonly websocket?: boolean;
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
  /**
   * How many instances run in the distributed topology (`npm run start:distributed`) and in the
   * production compose file (default 1); the gateway balances across them. `npm start` runs one.
   */
  readonly replicas?: number;
  /**
   * V8's young-generation semi-space of its processes, in MB, when the CLI runs them (default 1, to
   * keep the system small at rest). A service that allocates on every request (the gateway) gets
   * more: 1 MB meant a scavenge every 20 of its requests.
   */
  readonly semiSpaceMb?: number;
  /**
   * Route prefixes this service handles; the gateway routes them (a prefix nested in another of the
   * same service refines it, e.g. a public `/api/v1/auth/login` under `/api/v1/auth`).
   */
  readonly routes: readonly RouteDefinition[];
  /**
   * Permissions this service's routes check, `resource:read` or `resource:write` (e.g.
   * `labels:read`); IAM's seed registers every declared permission and grants it to `admin`.
   */
  readonly permissions?: readonly string[];
  /**
   * Resources among its permissions whose rows carry a department, so that its routes apply an
   * own-department or other-department policy condition; IAM refuses such a policy on any other.
   */
  readonly departmentScoped?: readonly string[];
  /**
   * The edge (the gateway): it routes every service's `routes`, so every service with routes is one
   * of its peers (its `<KEY>_URL`), without being listed in its `dependsOn` or `calls`.
   */
  readonly edge?: boolean;
  /** Services this one calls and starts after; each gets a `<KEY>_URL` variable. */
  readonly dependsOn?: readonly string[];
  /**
   * Services this one calls only while serving requests (a run-time dependency: no start order, so
   * they may depend on this one); each gets a `<KEY>_URL` variable, and is a 503 while it is down.
   */
  readonly calls?: readonly string[];
  /**
   * The variables only this service reads, as a TypeBox object (one property per variable, with a
   * `description` and a `default` or `examples`). The service reads them with `loadConfig` through
   * this schema; `npm start`, `.env.example` and the compose files are derived from it. Variables
   * every service reads (HOST, PORT, …), peer URLs, backing services' and jobs' schedule variables
   * are added by the platform (`serviceConfigSchemaOf`), never declared here.
   */
  readonly config?: TObject;
  /** Backing services this one uses; each adds its variables, and its container to the compose files. */
  readonly uses?: readonly BackingService[];
  /**
   * The identity provider (one service): it issues the tokens every other service verifies, and
   * its `user.*` and `role.permissions-changed` events are followed by each of them (a broadcast).
   */
  readonly identity?: boolean;
  readonly events?: {
    /** Every event type this service appends to its outbox, with its payload's schema (registry/src/events.ts). */
    readonly publishes?: Readonly<Record<string, TObject>>;
    /**
     * What each published entity's events carry as `aggregate.id`, by entity (`{ label: 'code' }`):
     * a lookup of that entity must use it as its key (its events are applied by it, its export rows
     * are matched by it).
     */
    readonly aggregateIds?: Readonly<Record<string, string>>;
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
  /** Every subscription the platform starts for this service (declared, lookups', identity's). */
  readonly subscriptions: readonly ServiceSubscription[];
}

/** The validated registry: services in dependency order (dependencies first). */
export interface Registry {
  readonly services: readonly Service[];
  service(key: string): Service;
}
