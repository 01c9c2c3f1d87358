import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { createAuth, type Auth } from '@archipelago/platform/auth';
import { pruneOutboxJob, registerEventFeed } from '@archipelago/platform/events';
import { registerJobRoutes, startJobs } from '@archipelago/platform/jobs';
import { loadRegistry } from '@archipelago/registry';
import { apiTokenRepository } from './api-tokens/api-token.repository.ts';
import { apiTokenRoutes } from './api-tokens/api-token.routes.ts';
import { apiTokenService } from './api-tokens/api-token.service.ts';
import { auditPurgeJob } from './audit/audit.purge.ts';
import { auditLog } from './audit/audit.repository.ts';
import type { IamDatabase } from './database.ts';
import { internalRoutes } from './internal.routes.ts';
import { jwksRoutes } from './keys/key.routes.ts';
import { keyStore, type KeyStore } from './keys/key-store.ts';
import { passwordResetRepository } from './password-resets/password-reset.repository.ts';
import { passwordResetRoutes } from './password-resets/password-reset.routes.ts';
import { passwordResetService } from './password-resets/password-reset.service.ts';
import { policyRepository } from './policies/policy.repository.ts';
import { policyRoutes } from './policies/policy.routes.ts';
import { roleRepository } from './roles/role.repository.ts';
import { roleRoutes } from './roles/role.routes.ts';
import { roleService } from './roles/role.service.ts';
import { authRoutes } from './sessions/auth.routes.ts';
import { authService } from './sessions/auth.service.ts';
import { loginThrottle, sessionRepository } from './sessions/session.repository.ts';
import { defaultIamSettings, type IamSettings } from './settings.ts';
import { userRepository } from './users/user.repository.ts';
import { userRoutes } from './users/user.routes.ts';
import { userService } from './users/user.service.ts';

export interface IamApp extends HttpServer {
  readonly iam: { readonly keys: KeyStore; readonly auth: Auth };
}

/** Composition root of the iam service. */
export async function buildApp(deps: AppDeps<IamDatabase> & { settings?: Partial<IamSettings> }): Promise<HttpServer> {
  return buildIam(deps);
}

/** The iam app with its key store and auth helper exposed (tests and the bench sign with them). */
export async function buildIam({ db, logger, databaseUrl, env, settings: overrides }: AppDeps<IamDatabase> & { settings?: Partial<IamSettings> }): Promise<IamApp> {
  const settings: IamSettings = { ...defaultIamSettings, ...overrides };
  const app = await createHttpServer({ service: 'iam', logger, readiness: () => checkDatabase(db), bodyLimit: 64 * 1024 });

  const users = userRepository(db);
  const roles = roleRepository(db);
  const sessions = sessionRepository(db);
  const tokens = apiTokenRepository(db);
  const audit = auditLog(db);
  const keys = keyStore(db, { accessTtlSeconds: settings.accessTtlSeconds, publishLeadSeconds: settings.publishLeadSeconds, secret: settings.signingKeySecret, now: settings.now });
  await keys.ensureKey();

  const apiTokens = apiTokenService({ tokens, users, audit, authorization: () => roles.authorizationData(), now: settings.now });
  // IAM verifies with what it owns: its keys, its role map and its API tokens, read from its database.
  const auth = createAuth({
    sources: {
      keys: keys.verifyKeys,
      authorization: () => roles.authorizationData(),
      apiToken: (t) => apiTokens.introspect(t),
      sessionActive: async (sid) => (await sessions.activeAmong([sid], new Date(settings.now()))).length === 1,
    },
    authorizationTtlMs: 0,
    apiTokenTtlMs: 0,
    sessionTtlMs: 0,
  });

  authRoutes(app, { service: authService({ db, users, sessions, throttle: loginThrottle(db), keys, audit, settings }), auth, users });
  passwordResetRoutes(app, passwordResetService({ db, users, resets: passwordResetRepository(), sessions, audit, settings, logger }));
  apiTokenRoutes(app, { service: apiTokens, auth });
  userRoutes(app, { users, service: userService({ db, users, roles, sessions, apiTokens: tokens, audit }), auth });
  roleRoutes(app, { roles, service: roleService({ db, roles, audit }), auth });
  policyRoutes(app, { policies: policyRepository(db), roles, auth });
  jwksRoutes(app, keys);
  internalRoutes(app, { users, roles, sessions, apiTokens, keys, now: () => new Date(settings.now()) });
  await registerEventFeed(app, { source: 'iam', schema: 'iam', db, listenUrl: databaseUrl });

  const jobs = await startJobs({
    service: 'iam', db, declared: loadRegistry().service('iam').jobs ?? [], env, logger: logger || undefined,
    handlers: { 'outbox.prune': pruneOutboxJob(db), 'audit.purge': auditPurgeJob(audit, { retentionDays: settings.auditRetentionDays, now: settings.now }) },
  });
  registerJobRoutes(app, jobs);
  app.addHook('onClose', () => jobs.stop());
  return Object.assign(app, { iam: { keys, auth } });
}
