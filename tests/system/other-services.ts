import type { Kysely } from 'kysely';
import type { AppDeps, HttpServer } from '@archipelago/platform';
import type { Auth } from '@archipelago/platform/auth';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import { useTestDatabase } from '@archipelago/platform/testing';
import { testCredentials } from '@archipelago/platform/testing/credentials';
import { loadRegistry } from '@archipelago/registry';

/**
 * What the composition root of a service made by `npm run cli -- new service` takes (its
 * `src/app.ts`): the app deps, a token verifier, its credentials and its peers' URLs.
 */
export interface ScaffoldedAppDeps extends AppDeps<unknown> {
  readonly auth: Auth;
  readonly credentials: ServiceCredentials;
  readonly peer: (key: string) => string;
}

type ScaffoldedApp = { readonly buildApp: (deps: ScaffoldedAppDeps) => Promise<HttpServer> };

/**
 * The system tests build the reference services by hand (each composition root takes its own
 * deps); every other service of the registry, the edge aside, is built here through the
 * scaffold's contract on a fresh test database, so a service added later is covered too.
 */
export async function buildOtherServices(
  known: readonly string[],
  deps: { auth: (service: string) => Auth; peer: (key: string) => string },
): Promise<Record<string, HttpServer>> {
  const apps: Record<string, HttpServer> = {};
  for (const service of loadRegistry(undefined, {}).services) {
    if (known.includes(service.key) || service.edge) continue;
    const { buildApp } = (await import(`../../services/${service.key}/src/app.ts`)) as ScaffoldedApp;
    const database = service.stateful ? await useTestDatabase(service.key) : undefined;
    apps[service.key] = await buildApp({
      db: database?.db as Kysely<unknown>, databaseUrl: database?.appUrl, logger: false, credentials: testCredentials(service.key),
      auth: deps.auth(service.key), peer: deps.peer, env: { LOOKUP_RECONCILE_AT: 'off' },
    });
  }
  return apps;
}
