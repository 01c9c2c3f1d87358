import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import type { Kysely } from 'kysely';
import { createAuth, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import { apiTokenRepository } from './api-tokens/api-token.repository.ts';
import { apiTokenRoutes } from './api-tokens/api-token.routes.ts';
import { apiTokenService } from './api-tokens/api-token.service.ts';
import { auditPurgeJob } from './audit/audit.purge.ts';
import { auditLog } from './audit/audit.repository.ts';
import type { IamDatabase } from './database.ts';
import { departmentDirectory } from './departments/department.directory.ts';
import { activeSessions, internalRoutes } from './internal.routes.ts';
import { jwksRoutes } from './keys/key.routes.ts';
import { keyStore, type KeyStore } from './keys/key-store.ts';
import { passwordResetRepository } from './password-resets/password-reset.repository.ts';
import { passwordResetRoutes } from './password-resets/password-reset.routes.ts';
import { passwordResetService } from './password-resets/password-reset.service.ts';
import { policyRepository } from './policies/policy.repository.ts';
import { policyRoutes } from './policies/policy.routes.ts';
import { policyService } from './policies/policy.service.ts';
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
  /** `mailSettled` resolves once every reset mail being sent has gone. */
  readonly iam: { readonly keys: KeyStore; readonly auth: Auth; readonly mailSettled: () => Promise<void> };
}

/** Composition root of the iam service. */
export async function buildApp(deps: AppDeps<IamDatabase> & { settings?: Partial<IamSettings> }): Promise<HttpServer> {
  return buildIam(deps);
}

/** The iam app with its key store and auth helper exposed (tests and the bench sign with them). */
export async function buildIam(deps: AppDeps<IamDatabase> & { settings?: Partial<IamSettings> }): Promise<IamApp> {
  const { db, logger, credentials, settings: overrides } = deps;
  const settings: IamSettings = { ...defaultIamSettings, ...overrides };
  const app = await createHttpServer({ service: 'iam', logger, readiness: () => checkDatabase(db), bodyLimit: 64 * 1024, credentials, idempotency: { db: db as Kysely<unknown> } });

  const users = userRepository(db);
  const roles = roleRepository(db);
  const sessions = sessionRepository(db);
  const tokens = apiTokenRepository(db);
  const audit = auditLog(db);
  const keys = keyStore(db, { accessTtlSeconds: settings.accessTtlSeconds, publishLeadSeconds: settings.publishLeadSeconds, secret: settings.signingKeySecret, now: settings.now });
  await keys.ensureKey();

  const apiTokens = apiTokenService({ db, tokens, users, audit, authorization: () => roles.authorizationData(), now: settings.now });
  // IAM verifies with what it owns: its keys, its role map and its API tokens, read from its database.
  const auth = createAuth({
    sources: {
      keys: keys.verifyKeys,
      authorization: () => roles.authorizationData(),
      apiToken: (t) => apiTokens.introspect(t),
      sessionActive: async (sid) => (await activeSessions(users, sessions, [sid], new Date(settings.now())))[0] ?? null,
    },
    authorizationTtlMs: 0,
    apiTokenTtlMs: 0,
    sessionTtlMs: 0,
  });

  const throttle = loginThrottle(db);
  const resets = passwordResetService({ db, users, resets: passwordResetRepository(), sessions, apiTokens: tokens, throttle, audit, settings, logger });
  authRoutes(app, { service: authService({ db, users, sessions, throttle, keys, audit, settings }), auth, users });
  passwordResetRoutes(app, resets);
  apiTokenRoutes(app, { service: apiTokens, auth });
  userRoutes(app, { users, service: userService({ db, users, roles, sessions, apiTokens: tokens, departments: departmentDirectory(settings.masterdataUrl, credentials), audit }), auth });
  roleRoutes(app, { roles, service: roleService({ db, roles, audit }), auth });
  const policies = policyRepository(db);
  policyRoutes(app, { policies, service: policyService({ db, policies, audit }), roles, auth });
  jwksRoutes(app, keys);
  internalRoutes(app, { users, roles, sessions, apiTokens, keys, now: () => new Date(settings.now()) });
  // Its events and its jobs (the platform's prunes beside its audit purge): from the registry.
  await composeService(app, { service: 'iam', deps, jobs: { 'audit.purge': auditPurgeJob(audit, { retentionDays: settings.auditRetentionDays }) } });
  app.addHook('onClose', async () => {
    await resets.settled();
    await settings.mailer.close();
  });
  if (logger) logger.info({ mail: settings.mailer.describe }, 'reset links are mailed');
  return Object.assign(app, { iam: { keys, auth, mailSettled: () => resets.settled() } });
}
