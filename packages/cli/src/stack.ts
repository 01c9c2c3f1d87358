import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { envPrefix, type Registry, type Service } from '@archipelago/registry';
import { loadConfig, repositoryRoot, serviceLayout } from '@archipelago/platform';
import Type from 'typebox';
import { openDatabases, type OpenedDatabases } from '@archipelago/platform/databases';
import type { EmbeddedEvent } from '@archipelago/platform/embedded';

/** Where this checkout keeps its runtime data, and the embedded cluster's port. */
export interface LocalSettings {
  readonly dataDir: string;
  readonly pgPort: number;
}

/** The variables the CLI itself reads, validated like a service's. */
const cliConfigSchema = Type.Object({
  ARCHIPELAGO_DATA_DIR: Type.Optional(Type.String({ minLength: 1 })),
  ARCHIPELAGO_PG_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5454 }),
  DATABASE_CONNECT_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 8 }),
  ARCHIPELAGO_LIVENESS_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 10_000 }),
});

export function localSettings(env: Readonly<Record<string, string | undefined>>): LocalSettings & { connectAttempts: number; livenessTimeoutMs: number } {
  const config = loadConfig(cliConfigSchema, env);
  return {
    dataDir: path.resolve(config.ARCHIPELAGO_DATA_DIR ?? path.join(repositoryRoot, '.data')),
    pgPort: config.ARCHIPELAGO_PG_PORT,
    connectAttempts: config.DATABASE_CONNECT_ATTEMPTS,
    livenessTimeoutMs: config.ARCHIPELAGO_LIVENESS_TIMEOUT_MS,
  };
}

/** Opens the databases of `services` (embedded or external), as configured by the environment. */
export async function openLocalDatabases(
  services: readonly Service[],
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<OpenedDatabases> {
  const settings = localSettings(env);
  await privateDirectory(settings.dataDir);
  return openDatabases(services, {
    env,
    embedded: {
      dataDir: path.join(settings.dataDir, 'postgres'),
      port: settings.pgPort,
      // A restart that keeps failing (disk full, …) retries every 2 s: say so now and then, not each time.
      onEvent: (event) => (event.kind !== 'restart-failed' || event.attempt <= 3 || event.attempt % 30 === 0) && say(describeEmbeddedEvent(event)),
    },
    connectAttempts: settings.connectAttempts,
    onRetry: (service, attempt, delay, error) =>
      say(`  … ${service}: database not reachable (${(error as Error).message}); retry ${attempt} in ${delay} ms`),
  });
}

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
 * What a service inherits from the CLI's environment: an allowlist, so secrets meant for other
 * services (their database URLs, passwords, PGPASSWORD, …) never reach it.
 */
const INHERITED_VARIABLE = /^(PATH|HOME|TMPDIR|TZ|LANG|LC_[A-Z]+|NODE_[A-Z_]+|LOG_LEVEL|DATABASE_CONNECT_ATTEMPTS|LOOKUP_RECONCILE_AT)$/;

/** Variables only one service reads, passed to it alone (so a secret among them reaches no other). */
const OWN_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  iam: ['JWT_ACCESS_TTL_SECONDS', 'JWT_PUBLISH_LEAD_SECONDS', 'IAM_SIGNING_KEY_SECRET', 'PASSWORD_RESET_URL', 'SMTP_URL', 'MAIL_FROM', 'MAIL_DIR'],
  gateway: ['CORS_ORIGINS', 'REDIS_URL', 'RATE_LIMIT_PER_IP', 'RATE_LIMIT_PER_USER', 'RATE_LIMIT_WINDOW_MS', 'GATEWAY_BODY_LIMIT', 'UPSTREAM_TIMEOUT_MS'],
};

/**
 * Defaults that depend on this checkout: IAM's reset links point at the gateway's port, and its
 * mailbox lives in the data directory (`<data>/mail`, read with `archipelago mail`).
 */
function derivedDefaults(registry: Registry, service: Service, env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  if (service.key !== 'iam') return {};
  const gateway = registry.services.find((s) => s.key === 'gateway');
  return {
    MAIL_DIR: mailDirectory(env),
    ...(gateway ? { PASSWORD_RESET_URL: `http://127.0.0.1:${gateway.port}/reset-password?token=` } : {}),
  };
}

/** Where IAM's local mailbox is under `npm start`. */
export function mailDirectory(env: Readonly<Record<string, string | undefined>>): string {
  return env.MAIL_DIR ?? path.join(localSettings(env).dataDir, 'mail');
}

/** The environment a service process runs with; `credentials` are its own key and every public key. */
export function serviceEnvironment(
  registry: Registry,
  service: Service,
  databaseUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  credentials: Readonly<Record<string, string>> = {},
): Record<string, string | undefined> {
  const own = OWN_VARIABLES[service.key] ?? [];
  const inherited = Object.fromEntries(Object.entries(env).filter(([name]) => INHERITED_VARIABLE.test(name) || own.includes(name)));
  const peers = [...(service.dependsOn ?? []), ...(service.calls ?? [])];
  const urls = Object.fromEntries(peers.map((dep) => [`${envPrefix(dep)}_URL`, `http://127.0.0.1:${registry.service(dep).port}`]));
  return {
    ...derivedDefaults(registry, service, env),
    ...inherited,
    ...urls,
    ...service.extraEnv,
    HOST: '127.0.0.1',
    PORT: String(service.port),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...credentials,
  };
}

/** Small young generation: services allocate little, and it saves ~20 MB of RSS per process. */
export const NODE_MEMORY_FLAGS = ['--max-semi-space-size=1'];

/** Node arguments that run a service (compiled under `npm start`, TypeScript through tsx otherwise). */
export function serviceCommand(service: Service): string[] {
  const main = serviceLayout(service.key).main;
  return [...NODE_MEMORY_FLAGS, ...(main.endsWith('.ts') ? ['--import', 'tsx'] : []), main];
}
