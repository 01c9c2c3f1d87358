import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { envPrefix, type Registry, type Service } from '@archipelago/registry';
import { repositoryRoot, serviceLayout } from '@archipelago/platform';
import { openDatabases, type OpenedDatabases } from '@archipelago/platform/databases';

/** Where this checkout keeps its runtime data, and the embedded cluster's port. */
export interface LocalSettings {
  readonly dataDir: string;
  readonly pgPort: number;
}

export function localSettings(env: Readonly<Record<string, string | undefined>>): LocalSettings {
  const pgPort = Number(env.ARCHIPELAGO_PG_PORT ?? 5454);
  if (!Number.isInteger(pgPort) || pgPort < 1 || pgPort > 65535) {
    throw new Error(`ARCHIPELAGO_PG_PORT="${env.ARCHIPELAGO_PG_PORT}" is not a TCP port (1–65535)`);
  }
  return { dataDir: path.resolve(env.ARCHIPELAGO_DATA_DIR ?? path.join(repositoryRoot, '.data')), pgPort };
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
    connectAttempts: env.DATABASE_CONNECT_ATTEMPTS ? Number(env.DATABASE_CONNECT_ATTEMPTS) : undefined,
    onRetry: (service, attempt, delay, error) =>
      say(`  … ${service}: database not reachable (${(error as Error).message}); retry ${attempt} in ${delay} ms`),
  });
}

/** Secrets and other services' URLs never reach a service: it gets its own DATABASE_URL only. */
const PRIVATE_VARIABLE = /(_DATABASE_URL|_PASSWORD)$/;

/** The environment a service process runs with. */
export function serviceEnvironment(
  registry: Registry,
  service: Service,
  databaseUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string | undefined> {
  const inherited = Object.fromEntries(Object.entries(env).filter(([name]) => !PRIVATE_VARIABLE.test(name)));
  const urls = Object.fromEntries((service.dependsOn ?? []).map((dep) => [`${envPrefix(dep)}_URL`, `http://127.0.0.1:${registry.service(dep).port}`]));
  return {
    ...inherited,
    ...urls,
    ...service.extraEnv,
    HOST: '127.0.0.1',
    PORT: String(service.port),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  };
}

/** Small young generation: services allocate little, and it saves ~20 MB of RSS per process. */
export const NODE_MEMORY_FLAGS = ['--max-semi-space-size=1'];

/** Node arguments that run a service (compiled under `npm start`, TypeScript through tsx otherwise). */
export function serviceCommand(service: Service): string[] {
  const main = serviceLayout(service.key).main;
  return [...NODE_MEMORY_FLAGS, ...(main.endsWith('.ts') ? ['--import', 'tsx'] : []), main];
}
