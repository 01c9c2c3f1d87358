import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Registry, Service } from '@archipelago/registry';
import { isDerived, loadConfig, peersOf, peerUrlVariable, serviceConfigSchemaOf } from '@archipelago/platform/config';
import { repositoryRoot, serviceLayout } from '@archipelago/platform/layout';
import Type from 'typebox';
import { openDatabases, type OpenedDatabases } from '@archipelago/platform/databases';
import type { EmbeddedEvent } from '@archipelago/platform/embedded';

/**
 * `local`: one embedded PostgreSQL for every service, one instance of each (`npm start`).
 * `distributed`: one embedded PostgreSQL per service and each service's `replicas` instances
 * (`npm run start:distributed`; set it for the other CLI commands to find those clusters).
 */
export type Topology = 'local' | 'distributed';

/** Where this checkout keeps its runtime data, and the embedded cluster's port. */
export interface LocalSettings {
  readonly dataDir: string;
  readonly pgPort: number;
  readonly topology: Topology;
  /** Instances per service key where ARCHIPELAGO_INSTANCES sets them (else the topology decides). */
  readonly instances: InstanceCounts;
}

/** Instances per service key, e.g. `{ core: 2 }`. */
export type InstanceCounts = Readonly<Record<string, number>>;

/** The variables the CLI itself reads, validated like a service's (and listed in .env.example). */
export const cliConfigSchema = Type.Object({
  ARCHIPELAGO_DATA_DIR: Type.Optional(Type.String({ minLength: 1, description: 'runtime data: the embedded PostgreSQL, credentials, the mailbox', examples: ['.data'] })),
  ARCHIPELAGO_PG_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5454, description: "the embedded PostgreSQL's port" }),
  DATABASE_CONNECT_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 8, description: 'tries to reach a database before giving up' }),
  ADMIN_EMAIL: Type.String({ default: 'admin@example.com', description: "the first administrator, created by IAM's seed" }),
  ADMIN_PASSWORD: Type.Optional(Type.String({ description: 'unset: a random one, printed once and kept in .data/iam-admin-password.txt' })),
  ARCHIPELAGO_TOPOLOGY: Type.Union([Type.Literal('local'), Type.Literal('distributed')], {
    default: 'local',
    description: 'local: one embedded PostgreSQL, one instance per service; distributed: one embedded PostgreSQL per service (on ARCHIPELAGO_PG_PORT+1…) and each service\'s replicas',
  }),
  ARCHIPELAGO_INSTANCES: Type.Optional(Type.String({
    pattern: '^[a-z][a-z0-9-]*=([1-9]|1[0-6])(,[a-z][a-z0-9-]*=([1-9]|1[0-6]))*$',
    description: 'instances of a service, in either topology, instead of one (local) or its replicas (distributed); the gateway balances across them',
    examples: ['core=2'],
  })),
  ARCHIPELAGO_LIVENESS_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 10_000, description: 'a service not answering /health/live this long is killed and restarted (0: never)' }),
  REPORTING_REPLICATOR_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: "reporting's replication role; needed when no database is embedded (else generated and kept in credentials.json)" })),
  REPORTING_READER_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: "reporting_reader's login for reporting tools (else generated and kept in credentials.json)" })),
  REPORTING_QUERY_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000, description: "longest statement, transaction and idle spell in a transaction of reporting's readers" }),
  REPORTING_HEARTBEAT_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 300, description: 'a logical message in every replicated database this often while start runs (0: none)' }),
});

export function localSettings(env: Readonly<Record<string, string | undefined>>): LocalSettings & { connectAttempts: number; livenessTimeoutMs: number; reporting: { queryTimeoutMs: number; heartbeatSeconds: number } } {
  const config = loadConfig(cliConfigSchema, env);
  return {
    reporting: { queryTimeoutMs: config.REPORTING_QUERY_TIMEOUT_MS, heartbeatSeconds: config.REPORTING_HEARTBEAT_SECONDS },
    dataDir: path.resolve(config.ARCHIPELAGO_DATA_DIR ?? path.join(repositoryRoot, '.data')),
    pgPort: config.ARCHIPELAGO_PG_PORT,
    topology: config.ARCHIPELAGO_TOPOLOGY,
    instances: parseInstanceCounts(config.ARCHIPELAGO_INSTANCES),
    connectAttempts: config.DATABASE_CONNECT_ATTEMPTS,
    livenessTimeoutMs: config.ARCHIPELAGO_LIVENESS_TIMEOUT_MS,
  };
}

/**
 * Opens the databases of `services` (embedded or external), as configured by the environment.
 * In the distributed topology each stateful service of the registry has its own embedded
 * cluster, in `<data>/postgres-<key>` on ARCHIPELAGO_PG_PORT + 1 + its place among them.
 */
export async function openLocalDatabases(
  registry: Registry,
  services: readonly Service[],
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<OpenedDatabases> {
  const settings = localSettings(env);
  await privateDirectory(settings.dataDir);
  // A restart that keeps failing (disk full, …) retries every 2 s: say so now and then, not each time.
  const onEvent = (event: EmbeddedEvent) => (event.kind !== 'restart-failed' || event.attempt <= 3 || event.attempt % 30 === 0) && say(describeEmbeddedEvent(event));
  const stateful = registry.services.filter((s) => s.stateful);
  return openDatabases(services, {
    env,
    embedded: settings.topology === 'distributed'
      ? (service) => ({ dataDir: clusterDirectory(settings, service), port: settings.pgPort + 1 + stateful.findIndex((s) => s.key === service.key), onEvent })
      : { dataDir: path.join(settings.dataDir, 'postgres'), port: settings.pgPort, onEvent },
    connectAttempts: settings.connectAttempts,
    onRetry: (service, attempt, delay, error) =>
      say(`  … ${service}: database not reachable (${(error as Error).message}); retry ${attempt} in ${delay} ms`),
  });
}

/** The data directory of a service's own cluster in the distributed topology. */
export const clusterDirectory = (settings: LocalSettings, service: Service): string => path.join(settings.dataDir, `postgres-${service.key}`);

/**
 * Creates (or tightens) a directory of the data dir to 0700: it holds secrets, logs and the
 * database files. Run as root, the embedded PostgreSQL (user `postgres`) must pass through it:
 * embedded.ts then lets that user's group traverse, and nobody else.
 */
export async function privateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => undefined); // not ours: embedded.ts explains
  // Someone else's directory is left as it is: starting there fails with a message saying why.
  if ((await stat(dir).catch(() => undefined))?.uid === process.getuid?.()) await chmod(dir, 0o700);
}

function describeEmbeddedEvent(event: EmbeddedEvent): string {
  switch (event.kind) {
    case 'crashed':
      return `  ✗ PostgreSQL exited unexpectedly (${event.signal ?? `code ${event.code}`}); restarting it (crash recovery)…`;
    case 'restart-failed':
      return `  … PostgreSQL did not start yet (${event.lastLog || 'no message'}); retry ${event.attempt} in ${event.retryInMs} ms`;
    case 'restarted':
      return `  ✓ PostgreSQL restarted in ${(event.ms / 1000).toFixed(1)} s after crash recovery; services reconnect by themselves`;
  }
}

/**
 * What a service inherits from the CLI's environment besides its configuration: the operating
 * system's and Node's own variables, never configuration (that comes from its schema).
 */
const PROCESS_VARIABLE = /^(PATH|HOME|TMPDIR|TZ|LANG|LC_[A-Z]+|NODE_[A-Z_]+)$/;

/**
 * Defaults that depend on this checkout: IAM's reset links point at the gateway's port, and its
 * mailbox lives in the data directory (`<data>/mail`, read with `archipelago mail`).
 */
function derivedDefaults(registry: Registry, service: Service, env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const gateway = registry.services.find((s) => s.key === 'gateway');
  return {
    ...(service.uses?.includes('mail') ? { MAIL_DIR: mailDirectory(env) } : {}),
    ...(service.key === 'iam' && gateway ? { PASSWORD_RESET_URL: `http://127.0.0.1:${gateway.port}/reset-password?token=` } : {}),
  };
}

/** Where IAM's local mailbox is under `npm start`. */
export function mailDirectory(env: Readonly<Record<string, string | undefined>>): string {
  return env.MAIL_DIR ?? path.join(localSettings(env).dataDir, 'mail');
}

/** One process of a service: `core`, `core-2`, … */
export interface Instance {
  readonly key: string;
  readonly service: Service;
  /** 0 for the first. */
  readonly index: number;
  readonly port: number;
}

/** `core=2,notification=1` (ARCHIPELAGO_INSTANCES, already checked against its pattern). */
export function parseInstanceCounts(text: string | undefined): InstanceCounts {
  return Object.fromEntries((text ? text.split(',') : []).map((entry) => entry.split('=')).map(([key, count]) => [key!, Number(count)]));
}

/**
 * A service's instances: as `counts` says, else one, or its `replicas` in the distributed
 * topology; the n-th listens on its port + 100·(n−1).
 */
export function instancesOf(service: Service, topology: Topology, counts: InstanceCounts = {}): Instance[] {
  const count = counts[service.key] ?? (topology === 'distributed' ? (service.replicas ?? 1) : 1);
  return Array.from({ length: count }, (_, index) => ({ key: index === 0 ? service.key : `${service.key}-${index + 1}`, service, index, port: instancePort(service, index) }));
}

const instancePort = (service: Service, index: number) => service.port + 100 * index;

/**
 * The environment a service process runs with; `credentials` are its own key and every public key.
 * With several instances of a peer, the edge (the gateway) gets them all in its `<KEY>_URL`
 * and balances; any other caller's n-th instance talks to the peer's n-th (modulo their count).
 */
export function serviceEnvironment(
  registry: Registry,
  service: Service,
  databaseUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  credentials: Readonly<Record<string, string>> = {},
  placement: { readonly topology: Topology; readonly index: number; readonly instances?: InstanceCounts } = { topology: 'local', index: 0 },
): Record<string, string | undefined> {
  // Exactly the variables its schema reads that the operator sets: a secret meant for another
  // service (its database URL, its key, PGPASSWORD, …) never reaches it.
  const operatorSet = new Set(Object.entries(serviceConfigSchemaOf(service).properties).filter(([, schema]) => !isDerived(schema)).map(([name]) => name));
  const inherited = Object.fromEntries(Object.entries(env).filter(([name]) => PROCESS_VARIABLE.test(name) || operatorSet.has(name)));
  const urls = Object.fromEntries(
    peersOf(service).map((peer) => {
      const instances = instancesOf(registry.service(peer), placement.topology, placement.instances).map((i) => `http://127.0.0.1:${i.port}`);
      return [peerUrlVariable(peer), service.edge ? instances.join(',') : instances[placement.index % instances.length]!];
    }),
  );
  return {
    ...derivedDefaults(registry, service, env),
    ...inherited,
    ...urls,
    HOST: '127.0.0.1',
    PORT: String(instancePort(service, placement.index)),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...credentials,
  };
}

/**
 * Small young generation (services allocate little: ~20 MB less RSS per process) and one V8
 * background thread instead of four (fewer thread stacks and malloc arenas; on a small machine
 * the seven Node processes share few cores anyway). Figures: bench/README.md, "Memory at rest".
 */
export const NODE_MEMORY_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1'];

/** The memory flags of one service's processes: its registry entry may ask for a larger young generation. */
function nodeMemoryFlags(service: Service): string[] {
  const semiSpace = service.semiSpaceMb;
  return semiSpace === undefined ? NODE_MEMORY_FLAGS : NODE_MEMORY_FLAGS.map((flag) => (flag.startsWith('--max-semi-space-size=') ? `--max-semi-space-size=${semiSpace}` : flag));
}

/** Node arguments that run a service (compiled under `npm start`, TypeScript through tsx otherwise). */
export function serviceCommand(service: Service): string[] {
  const main = serviceLayout(service.key).main;
  return [...nodeMemoryFlags(service), ...(main.endsWith('.ts') ? ['--import', 'tsx'] : []), main];
}
