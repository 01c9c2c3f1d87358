import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Registry, Service } from '@archipelago/registry';
import { isDerived, loadConfig, peersOf, peerUrlVariable, repositoryRoot, serviceConfigSchemaOf, serviceLayout } from '@archipelago/platform';
import Type from 'typebox';
import { openDatabases, type OpenedDatabases } from '@archipelago/platform/databases';

/** Where this checkout keeps its runtime data, and the embedded cluster's port. */
export interface LocalSettings {
  readonly dataDir: string;
  readonly pgPort: number;
}

/** The variables the CLI itself reads, validated like a service's (and listed in .env.example). */
export const cliConfigSchema = Type.Object({
  ARCHIPELAGO_DATA_DIR: Type.Optional(Type.String({ minLength: 1, description: 'runtime data: the embedded PostgreSQL, credentials, the mailbox', examples: ['.data'] })),
  ARCHIPELAGO_PG_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 5454, description: "the embedded PostgreSQL's port" }),
  DATABASE_CONNECT_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 8, description: 'tries to reach a database before giving up' }),
  ADMIN_EMAIL: Type.String({ default: 'admin@example.com', description: "the first administrator, created by IAM's seed" }),
  ADMIN_PASSWORD: Type.Optional(Type.String({ description: 'unset: a random one, printed once and kept in .data/iam-admin-password.txt' })),
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

/** The environment a service process runs with; `credentials` are its own key and every public key. */
export function serviceEnvironment(
  registry: Registry,
  service: Service,
  databaseUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  credentials: Readonly<Record<string, string>> = {},
): Record<string, string | undefined> {
  // Exactly the variables its schema reads that the operator sets: a secret meant for another
  // service (its database URL, its key, PGPASSWORD, …) never reaches it.
  const operatorSet = new Set(Object.entries(serviceConfigSchemaOf(service).properties).filter(([, schema]) => !isDerived(schema)).map(([name]) => name));
  const inherited = Object.fromEntries(Object.entries(env).filter(([name]) => PROCESS_VARIABLE.test(name) || operatorSet.has(name)));
  const urls = Object.fromEntries(peersOf(service).map((peer) => [peerUrlVariable(peer), `http://127.0.0.1:${registry.service(peer).port}`]));
  return {
    ...derivedDefaults(registry, service, env),
    ...inherited,
    ...urls,
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
