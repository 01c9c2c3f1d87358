import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { envPrefix, type Registry, type Service } from '@archipelago/registry';
import { loadConfig, repositoryRoot, serviceLayout } from '@archipelago/platform';
import Type from 'typebox';
import { openDatabases, type OpenedDatabases } from '@archipelago/platform/databases';

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
});

export function localSettings(env: Readonly<Record<string, string | undefined>>): LocalSettings & { connectAttempts: number } {
  const config = loadConfig(cliConfigSchema, env);
  return {
    dataDir: path.resolve(config.ARCHIPELAGO_DATA_DIR ?? path.join(repositoryRoot, '.data')),
    pgPort: config.ARCHIPELAGO_PG_PORT,
    connectAttempts: config.DATABASE_CONNECT_ATTEMPTS,
  };
}

/** Opens the databases of `services` (embedded or external), as configured by the environment. */
export async function openLocalDatabases(
  services: readonly Service[],
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<OpenedDatabases> {
  const settings = localSettings(env);
  await mkdir(settings.dataDir, { recursive: true });
  return openDatabases(services, {
    env,
    embedded: { dataDir: path.join(settings.dataDir, 'postgres'), port: settings.pgPort },
    connectAttempts: settings.connectAttempts,
    onRetry: (service, attempt, delay, error) =>
      say(`  … ${service}: database not reachable (${(error as Error).message}); retry ${attempt} in ${delay} ms`),
  });
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
