import type { Kysely } from 'kysely';
import { ConfigError, loadConfig, peersOf, peerUrlVariable, serviceConfigSchemaOf, type ServiceConfig } from './config.ts';
import { createDatabase, DatabaseUnreachableError, waitForDatabase } from './db.ts';
import { EXIT_CONFIG, StartupError } from './startup.ts';
import type { EventTransport } from './events/transport.ts';
import { createTransport } from './events/transports.ts';
import type { HttpServer } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import { MigrationError } from './migrate.ts';
import type { ServiceCredentials } from './internal-auth/credentials.ts';
import { serviceCredentialsFromEnv } from './internal-auth/environment.ts';
import { envPrefix, loadRegistry, RegistryError } from '@archipelago/registry';

/** What a service's app needs; tests pass `logger: false`. */
export interface AppDeps<DB> {
  readonly db: Kysely<DB>;
  readonly logger: Logger | false;
  /** The service's own database URL, for a LISTEN connection (event feed wake-ups). */
  readonly databaseUrl?: string;
  /** This service's credentials: pass them to `createHttpServer` and to every internal call. */
  readonly credentials?: ServiceCredentials;
  /** The process environment, where jobs' schedule overrides (`LOOKUP_RECONCILE_AT`) are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The base URL of a peer the service declares in `dependsOn` or `calls`; tests use `peerUrls`. */
  readonly peer?: (key: string) => string;
  /** How events travel (`runService`: the one `EVENT_TRANSPORT` names); default the feed. */
  readonly transport?: EventTransport;
}

/**
 * A `peer` function over known URLs, refusing a key the service does not declare.
 *
 * @example
 * buildApp({ ...deps, peer: peerUrls('core', { iam: identity.url, masterdata: masterdataUrl }) });
 */
export function peerUrls(service: string, urls: Readonly<Record<string, string>>): (key: string) => string {
  return (key) => {
    const url = urls[key];
    if (url === undefined) throw new Error(`${service} does not declare "${key}" in dependsOn or calls (registry/src/services.ts)`);
    return url.replace(/\/$/, '');
  };
}

/** What a service's composition root receives from `runService`. */
export interface ServiceDeps<DB> extends AppDeps<DB> {
  readonly logger: Logger;
  readonly config: ServiceConfig;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly credentials: ServiceCredentials;
  /** The base URL of a peer this service declares in `dependsOn` or `calls` (from `<KEY>_URL`). */
  readonly peer: (key: string) => string;
  readonly transport: EventTransport;
}

/** How long a service may take to close (requests in flight, consumers, pools) before it exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

/**
 * Runs a stateful service: validates config, waits for its database, builds the app through
 * the service's composition root, listens, and shuts down cleanly on SIGINT/SIGTERM.
 *
 * @example
 * await runService<CoreDatabase>({ service: 'core', buildApp: (deps) => buildCoreApp(deps) });
 */
export async function runService<DB>(options: { service: string; buildApp: (deps: ServiceDeps<DB>) => Promise<HttpServer> }): Promise<void> {
  await serve(options.service, async (config, logger, credentials, peer) => {
    const url = config.DATABASE_URL;
    if (!url) throw new ConfigError([{ variable: 'DATABASE_URL', message: `is required: ${options.service} owns a database` }]);
    await waitForDatabase(url, {
      attempts: config.DATABASE_CONNECT_ATTEMPTS,
      hint: `Check that PostgreSQL is running and that ${options.service}'s DATABASE_URL is right.`,
      onRetry: (attempt, delayMs, error) => logger.warn({ attempt, delayMs, err: error }, 'database not reachable yet; retrying'),
    });
    const db = createDatabase<DB>(url, { applicationName: options.service });
    // The one place a transport is chosen: EVENT_TRANSPORT (with `uses: ['rabbitmq']`), else the feed.
    const kind = (config as { EVENT_TRANSPORT?: string }).EVENT_TRANSPORT ?? 'feed';
    const transport = await createTransport(kind, { service: options.service, peer, credentials, config, logger });
    const app = await options.buildApp({ db, logger, config, env: process.env, databaseUrl: url, credentials, peer, transport });
    app.addHook('onClose', async () => db.destroy());
    return app;
  });
}

/** Runs a service that owns no database (the gateway). */
export async function runStatelessService(options: {
  service: string;
  buildApp: (deps: Omit<ServiceDeps<never>, 'db' | 'transport'>) => Promise<HttpServer>;
}): Promise<void> {
  await serve(options.service, (config, logger, credentials, peer) => options.buildApp({ logger, config, env: process.env, credentials, peer }));
}

type Build = (config: ServiceConfig, logger: Logger, credentials: ServiceCredentials, peer: (key: string) => string) => Promise<HttpServer>;

async function serve(service: string, build: Build): Promise<void> {
  // Started by the supervisor with an IPC channel: when the supervisor dies, so do we, from the
  // first moment (a service still waiting for its database would otherwise outlive it).
  let supervisorGone: () => void = () => process.exit(1);
  if (process.send) process.once('disconnect', () => supervisorGone());
  let config: ServiceConfig;
  let credentials: ServiceCredentials;
  let peer: (key: string) => string;
  try {
    // Every variable the registry says this service reads, validated at once, each problem named.
    const declared = loadRegistry().service(service);
    const all = loadConfig(serviceConfigSchemaOf(declared)) as Record<string, unknown>;
    config = all as ServiceConfig;
    peer = peerUrls(service, Object.fromEntries(peersOf(declared).map((key) => [key, String(all[peerUrlVariable(key)])])));
    credentials = serviceCredentialsFromEnv(service, process.env);
  } catch (error) {
    return fail(service, error);
  }
  const logger = createLogger(service, config.LOG_LEVEL);
  let app: HttpServer;
  try {
    app = await build(config, logger, credentials, peer);
    await app.listen({ host: config.HOST, port: config.PORT });
  } catch (error) {
    return fail(service, error);
  }
  let closing = false;
  const close = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    // Bounded: a close that hangs (a peer or the database gone mid-shutdown) must not keep the
    // process alive, least of all when the supervisor that would kill it is gone.
    setTimeout(() => {
      logger.error({ signal, deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => close('SIGINT'));
  process.once('SIGTERM', () => close('SIGTERM'));
  supervisorGone = () => close('supervisor gone');
}

// Known start-up problems get their message, not a stack trace.
function fail(service: string, error: unknown): never {
  const known = error instanceof ConfigError || error instanceof DatabaseUnreachableError || error instanceof StartupError ||
    error instanceof MigrationError || error instanceof RegistryError;
  const code = (error as { code?: string }).code;
  if (code === 'EADDRINUSE') {
    process.stderr.write(`${service}: its port is already in use (${(error as Error).message}). Stop the other program or set ${envPrefix(service)}_PORT.\n`);
  } else if (known) {
    process.stderr.write(`${service}: ${(error).message}\n`);
  } else {
    process.stderr.write(`${service}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(error instanceof ConfigError || code === 'EADDRINUSE' ? EXIT_CONFIG : 1);
}
