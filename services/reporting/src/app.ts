import { checkDatabase, createHttpServer, type HttpServer, type AppDeps } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import type { Kysely } from 'kysely';
import type { ReportingDatabase } from './database.ts';
import { loadReports, reportRepository } from './reports/report.repository.ts';
import { reportRoutes } from './reports/report.routes.ts';

export interface ReportingDeps extends AppDeps<ReportingDatabase> {
  /** Verifies tokens and `reporting:read` against IAM. */
  readonly auth: Auth;
  /** Retained WAL above which the status warns (bytes). */
  readonly maxRetainedBytes: number;
}

// Subscriptions are named reporting_<source database>; the source's database is its service's.
const sourceOf = (subscription: string) => subscription.replace(/^reporting_/, '').replace(/_t[0-9a-f]{8}$/, '');

/** Composition root of the reporting service: the cross-service reports and the replication status. */
export async function buildApp(deps: ReportingDeps): Promise<HttpServer> {
  const { db, logger, credentials, auth, maxRetainedBytes } = deps;
  const app = await createHttpServer({ service: 'reporting', logger, readiness: () => checkDatabase(db), credentials });
  protectApiRoutes(app, auth);
  // The identity provider's changes drop this instance's cached users and permissions (the registry's broadcast).
  await composeService(app, { service: 'reporting', deps, auth });
  reportRoutes(app, reportRepository(db as Kysely<unknown>), loadReports(), { maxRetainedBytes, sourceOf });
  return app;
}
