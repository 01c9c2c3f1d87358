import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import type { Kysely } from 'kysely';
import type { CoreDatabase } from './database.ts';
import { startIntegration, type CorePeers } from './integration.ts';

export interface CoreDeps extends AppDeps<CoreDatabase> {
  readonly peers: CorePeers;
  /** Daily lookup reconciliation (UTC); tests turn it `off`. */
  readonly reconcileAt?: string;
}

/** Composition root of the core service. */
export async function buildApp({ db, logger, peers, reconcileAt }: CoreDeps): Promise<HttpServer> {
  const app = await createHttpServer({ service: 'core', logger, readiness: () => checkDatabase(db) });
  await startIntegration(app, { db: db as Kysely<unknown>, peers, logger, reconcileAt: reconcileAt ?? '02:00' });
  return app;
}
