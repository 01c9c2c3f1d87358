import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '@archipelago/registry';
import { freePort, useTestDatabase } from '@archipelago/platform/testing';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { feedReaders, internalRoutesOf, SERVICE_TOKEN_HEADER, type InternalRoute } from '@archipelago/platform/internal-auth';
import { asPrincipal, OPERATOR, testCredentials, testPrincipals, testServiceToken } from '@archipelago/platform/testing/credentials';
import { peerUrlVariable, type HttpServer, peerUrls } from '@archipelago/platform';
import { buildApp as buildCore } from '../../services/core/src/app.ts';
import type { CoreDatabase } from '../../services/core/src/database.ts';
import { buildApp as buildGateway } from '../../services/gateway/src/app.ts';
import { gatewayUpstreams } from '../../services/gateway/src/upstreams.ts';
import { buildIam } from '../../services/iam/src/app.ts';
import type { IamDatabase } from '../../services/iam/src/database.ts';
import { buildApp as buildMasterdata } from '../../services/masterdata/src/app.ts';
import type { MasterdataDatabase } from '../../services/masterdata/src/database.ts';
import { buildApp as buildNotification } from '../../services/notification/src/app.ts';
import type { NotificationDatabase } from '../../services/notification/src/database.ts';
import { buildApp as buildReporting } from '../../services/reporting/src/app.ts';
import type { ReportingDatabase } from '../../services/reporting/src/database.ts';
import { buildOtherServices } from './other-services.ts';

const ID = '01890a5d-ac96-774b-b6e7-4d5b8a4e2c11';
const concrete = (url: string) => url.replace(/:[^/]+/g, ID);

// Every service's app as its composition root builds it, and every /internal route it registers
// (including routes added later: they are found, not listed): each refuses what is not a valid
// service token for it, and operator actions and event feeds refuse principals they do not allow.
describe('internal routes of every service', async () => {
  const registry = loadRegistry(undefined, {});
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const iamDb = await useTestDatabase('iam');
  const iam = await buildIam({ db: iamDb.db as Kysely<IamDatabase>, logger: false, credentials: testCredentials('iam') });
  const iamUrl = await iam.listen({ host: '127.0.0.1', port: 0 });
  const authFor = (service: string) => createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials(service) }) });
  const master = await useTestDatabase('masterdata');
  const core = await useTestDatabase('core');
  const notification = await useTestDatabase('notification');
  const reporting = await useTestDatabase('reporting');
  const apps: Record<string, HttpServer> = {
    iam,
    masterdata: await buildMasterdata({ db: master.db as Kysely<MasterdataDatabase>, logger: false, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: iamUrl }), auth: authFor('masterdata') }),
    core: await buildCore({
      db: core.db as Kysely<CoreDatabase>, logger: false, credentials: testCredentials('core'), auth: authFor('core'),
      peer: peerUrls('core', { masterdata: nobody, iam: iamUrl }), env: { LOOKUP_RECONCILE_AT: 'off' },
    }),
    notification: await buildNotification({
      db: notification.db as Kysely<NotificationDatabase>, logger: false, credentials: testCredentials('notification'), auth: authFor('notification'),
      peer: peerUrls('notification', { iam: iamUrl, core: nobody, masterdata: nobody }), env: { LOOKUP_RECONCILE_AT: 'off' },
    }),
    reporting: await buildReporting({ db: reporting.db as Kysely<ReportingDatabase>, logger: false, credentials: testCredentials('reporting'), peer: peerUrls('reporting', { iam: iamUrl }), auth: authFor('reporting'), maxRetainedBytes: 1024 ** 3 }),
    ...(await buildOtherServices(['iam', 'masterdata', 'core', 'notification', 'reporting'], { auth: authFor, peer: (key) => (key === 'iam' ? iamUrl : nobody) })),
    gateway: await buildGateway({
      logger: false, credentials: testCredentials('gateway'),
      upstreams: gatewayUpstreams(registry, Object.fromEntries(registry.services.map((s) => [peerUrlVariable(s.key), s.key === 'iam' ? iamUrl : nobody]))),
    }),
  };
  afterAll(async () => {
    for (const app of Object.values(apps)) await app.close();
  });
  const routes = Object.entries(apps).flatMap(([service, app]) => internalRoutesOf(app).map((route) => ({ service, app, ...route })));
  const callersOf = (service: string, method: string, url: string) => routes.find((r) => r.service === service && r.method === method && r.url === url)?.callers;
  const send = (app: HttpServer, route: InternalRoute, headers: Record<string, string> = {}) =>
    app.inject({ method: route.method as 'GET', url: concrete(route.url), headers, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }) });

  it('finds the internal routes the services have, every one of them for every service there is', () => {
    expect(Object.keys(apps).sort()).toEqual(registry.services.map((s) => s.key).sort());
    for (const service of ['iam', 'masterdata', 'core']) expect(routes.filter((r) => r.service === service).length, service).toBeGreaterThan(1);
  });

  it('limits operator actions to the operator, and each feed to its consumers in the registry', () => {
    expect(callersOf('iam', 'POST', '/internal/v1/signing-keys/rotate')).toEqual([OPERATOR]);
    expect(callersOf('core', 'POST', '/internal/v1/dead-letters/:id/replay')).toEqual([OPERATOR]);
    expect(callersOf('core', 'DELETE', '/internal/v1/dead-letters/:id')).toEqual([OPERATOR]);
    expect(callersOf('core', 'POST', '/internal/v1/lookups/reconcile')).toEqual([OPERATOR]);
    for (const service of registry.services.filter((s) => (s.jobs?.length ?? 0) > 0)) expect(callersOf(service.key, 'POST', '/internal/v1/jobs/:name/run'), service.key).toEqual([OPERATOR]);
    // Each feed is read by the services the registry says consume it (a service added later joins), and the operator.
    // Every service that verifies tokens follows IAM's changes (the platform's broadcast).
    expect(feedReaders('iam')).toEqual(expect.arrayContaining(['core', 'masterdata', 'notification', 'reporting', OPERATOR]));
    expect(feedReaders('masterdata')).toEqual(expect.arrayContaining(['core', OPERATOR]));
    expect(feedReaders('core')).toEqual(expect.arrayContaining(['notification', OPERATOR]));
    for (const service of registry.services.filter((s) => Object.keys(s.events?.publishes ?? {}).length > 0)) {
      expect(callersOf(service.key, 'GET', '/internal/v1/events'), service.key).toEqual(feedReaders(service.key));
    }
    for (const [service, url] of [['iam', '/internal/v1/users/validate'], ['iam', '/internal/v1/sessions/active'], ['iam', '/internal/v1/api-tokens/introspect']] as const) {
      expect(callersOf(service, 'POST', url), url).toBeUndefined(); // any principal
    }
  });

  it('answers 401 problem+json to no token, garbage, a wrong key, an unknown principal, an expired or too long-lived token and another audience', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const route of routes) {
      const other = registry.services.find((s) => s.key !== route.service)!.key;
      const bad: Record<string, Record<string, string>> = {
        none: {},
        garbage: { [SERVICE_TOKEN_HEADER]: 'not.a.jwt' },
        'wrong key': { [SERVICE_TOKEN_HEADER]: await testServiceToken(OPERATOR, route.service, { signedBy: 'core' }) },
        'unknown principal': { [SERVICE_TOKEN_HEADER]: await testServiceToken('intruder', route.service) },
        expired: { [SERVICE_TOKEN_HEADER]: await testServiceToken(OPERATOR, route.service, { issuedAtSeconds: now - 120 }) },
        'long-lived': { [SERVICE_TOKEN_HEADER]: await testServiceToken(OPERATOR, route.service, { ttlSeconds: 3_600 }) },
        'other audience': { [SERVICE_TOKEN_HEADER]: await testServiceToken(OPERATOR, other) },
      };
      for (const [name, headers] of Object.entries(bad)) {
        const response = await send(route.app, route, headers);
        const what = `${route.service} ${route.method} ${route.url}: ${name}`;
        expect(response.statusCode, what).toBe(401);
        expect(response.headers['content-type'], what).toMatch(/^application\/problem\+json/);
        expect(response.json(), what).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
      }
    }
  });

  it('answers 403 to a principal a route does not allow, and lets the allowed ones through', async () => {
    for (const route of routes) {
      const allowed = route.callers ?? testPrincipals();
      const refused = testPrincipals().filter((p) => !allowed.includes(p));
      const what = `${route.service} ${route.method} ${route.url}`;
      for (const principal of refused) {
        const response = await asPrincipal(route.app, principal, route.service).inject({ method: route.method, url: concrete(route.url), payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : {} });
        expect(response.statusCode, `${what} as ${principal}`).toBe(403);
      }
      const through = await send(route.app, route, { [SERVICE_TOKEN_HEADER]: await testCredentials(allowed[0]!).token(route.service) });
      expect([401, 403], `${what} as ${allowed[0]}: ${through.body}`).not.toContain(through.statusCode);
    }
  });
});
