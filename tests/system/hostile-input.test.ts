import SwaggerParser from '@apidevtools/swagger-parser';
import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { useTestReporting } from '@archipelago/platform/testing/reporting';
import type { OpenAPIV3 } from 'openapi-types';
import { afterAll, describe, expect, it } from 'vitest';
import { peerUrls, peerUrlVariable, type HttpServer } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { withOwnerDatabase } from '@archipelago/platform/databases';
import { freePort, testCredentials, useTestDatabase } from '@archipelago/platform/testing';
import { loadRegistry } from '@archipelago/registry';
import { buildApp as buildCore } from '../../services/core/src/app.ts';
import type { CoreDatabase } from '../../services/core/src/database.ts';
import { seed as seedCore } from '../../services/core/src/seed.ts';
import { buildApp as buildGateway } from '../../services/gateway/src/app.ts';
import { gatewayUpstreams } from '../../services/gateway/src/upstreams.ts';
import { buildIam } from '../../services/iam/src/app.ts';
import type { IamDatabase } from '../../services/iam/src/database.ts';
import { seedIam } from '../../services/iam/src/seed.ts';
import { buildApp as buildMasterdata } from '../../services/masterdata/src/app.ts';
import type { MasterdataDatabase } from '../../services/masterdata/src/database.ts';
import { seed as seedMasterdata } from '../../services/masterdata/src/seed.ts';
import { buildApp as buildNotification } from '../../services/notification/src/app.ts';
import type { NotificationDatabase } from '../../services/notification/src/database.ts';
import { buildApp as buildReporting } from '../../services/reporting/src/app.ts';
import type { ReportingDatabase } from '../../services/reporting/src/database.ts';
import { buildOtherServices } from './other-services.ts';

// docs/architecture.md#errors: hostile input is a 400 problem+json naming the field, never a 5xx. This test
// does not list cases by hand: it reads every service's OpenAPI document and sends every operation
// hostile values in each parameter and body field in turn (NUL bytes, numbers past bigint, wrong
// types, year 0, deep JSON, huge strings, odd unicode), the other fields valid, as a signed-in
// administrator so that requests get past authentication to the handlers and PostgreSQL.
// FUZZ_SEED and FUZZ_RUNS (hostile values per field) change the sample; the default is fixed.

const ADMIN = { email: 'admin@example.com', password: 'correct horse battery staple' };
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.FUZZ_RUNS ?? 6);

type Schema = OpenAPIV3.SchemaObject & { const?: unknown };
/** A hostile value: `json` is spliced into a JSON body as raw text (for what JSON.stringify cannot say). */
type Hostile = { value: unknown } | { json: string } | { raw: string };

const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

// Hostile values for any field, whatever its schema says.
const hostileValue: fc.Arbitrary<Hostile> = fc.oneof(
  fc.string({ maxLength: 8 }).map((s) => ({ value: `${s}\u0000${s}` })),
  fc.constantFrom<Hostile>(
    { value: '\u0000' },
    { value: true },
    { value: false },
    { value: null },
    { value: 0 },
    { value: 1 },
    { value: -1 },
    { value: 1.5 },
    { value: 123 },
    { value: '' },
    { value: ' ' },
    { value: 'abc' },
    { value: [] },
    { value: [1, 'a'] },
    { value: {} },
    { value: { nested: { deeper: 'x' } } },
    { value: 2 ** 53 },
    { value: -(2 ** 63) },
    { value: 1e20 },
    { json: '99999999999999999999' },
    { json: '1e400' },
    { json: '-1e400' },
    { value: '99999999999999999999' },
    { value: '9223372036854775808' },
    { value: 'NaN' },
    { value: 'Infinity' },
    { value: '0000-01-01' },
    { value: '0000-01-01T00:00:00Z' },
    { value: '-0001-01-01' },
    { value: '10000-01-01' },
    { value: '2026-02-30' },
    { value: '2026-12-31T23:59:60Z' },
    { value: 'urn:uuid:8a3a9c2e-0000-4000-8000-000000000000' },
    { value: '{8a3a9c2e-0000-4000-8000-000000000000}' },
    { value: '8A3A9C2E-0000-4000-8000-000000000000' },
    { value: '00000000-0000-0000-0000-000000000000' },
    { value: '\ud800' },
    { value: '\udfff\ud800' },
    { value: '\u202e\u0301\ufeff\uffff' },
    { value: '😀'.repeat(40) },
    { value: 'İı'.repeat(30) },
    { value: 'x'.repeat(100_000) },
    { value: 'é'.repeat(3_000) },
    { value: "'; DROP TABLE users; --" },
    { value: '%00' },
    { value: '../../etc/passwd' },
    { json: deep(3_000) },
    { json: deep(40) },
    { raw: '%E0%A4%A' },
    { raw: '%' },
    { raw: '%00' },
  ),
);

// Whole bodies that are not what any route takes.
const hostileBodies = ['null', '[]', '"text"', '42', 'true', deep(5_000), `{"a":${deep(3_000)}}`, '{"unterminated": "', '{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"polluted": true}}}', '\u0000', `[${'1,'.repeat(50_000)}1]`];

// A plausible valid value for a schema, so that one hostile field is tested at a time.
let patternSeed = SEED;
function validValue(schema: Schema | undefined): unknown {
  if (!schema) return 'x';
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return validValue(variants.find((v) => (v as { type?: string }).type !== 'null') as Schema);
  switch (schema.type) {
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object': {
      const required = new Set(schema.required ?? []);
      return Object.fromEntries(Object.entries(schema.properties ?? {}).filter(([name]) => required.has(name)).map(([name, property]) => [name, validValue(property as Schema)]));
    }
    default:
      if (schema.format === 'uuid') return '8a3a9c2e-1111-4000-8000-000000000000';
      if (schema.format === 'date') return '2025-01-15';
      if (schema.format === 'date-time') return '2025-01-15T10:00:00Z';
      if (schema.format === 'email') return 'fuzz@example.com';
      if (schema.pattern) return fc.sample(fc.stringMatching(new RegExp(schema.pattern)), { numRuns: 1, seed: patternSeed++ })[0];
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
  }
}

interface Operation {
  service: string;
  method: string;
  path: string;
  parameters: OpenAPIV3.ParameterObject[];
  body?: Schema;
}

interface Outcome {
  requests: number;
  serverErrors: { request: string; status: number; body: string }[];
  notProblem: { request: string; status: number; contentType: string }[];
  unnamed: { request: string; body: string }[];
  statuses: Record<number, number>;
}

function operationsOf(service: string, document: OpenAPIV3.Document): Operation[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    (['get', 'post', 'put', 'patch', 'delete'] as const).flatMap((method) => {
      const operation = item?.[method];
      if (!operation) return [];
      const body = (operation.requestBody as OpenAPIV3.RequestBodyObject | undefined)?.content['application/json']?.schema as Schema | undefined;
      return [{ service, method: method.toUpperCase(), path, parameters: (operation.parameters ?? []) as OpenAPIV3.ParameterObject[], body }];
    }),
  );
}

// Percent-encodes like a client would; a lone surrogate (no UTF-8 for it) goes as the bytes of one.
const encode = (text: string): string => encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\u0001')).replace(/%01/g, '%ED%A0%80');
const encodeValue = (hostile: Hostile): string =>
  'raw' in hostile ? hostile.raw : encode('json' in hostile ? hostile.json : typeof hostile.value === 'string' ? hostile.value : JSON.stringify(hostile.value));

describe('hostile input to every route of every service', async () => {
  const iamDatabase = await useTestDatabase('iam');
  await seedIam(iamDatabase.db as Kysely<IamDatabase>, { adminEmail: ADMIN.email, adminPassword: ADMIN.password, passwordFile: '/nonexistent', say: () => undefined });
  const masterdataPort = await freePort(); // IAM asks masterdata about departments while serving
  const iam = await buildIam({ db: iamDatabase.db as Kysely<IamDatabase>, logger: false, databaseUrl: iamDatabase.appUrl, credentials: testCredentials('iam'), settings: { masterdataUrl: `http://127.0.0.1:${masterdataPort}` } });
  const iamUrl = await iam.listen({ host: '127.0.0.1', port: 0 });
  const auth = (service: string) => createAuth({ sources: remoteAuthSources(iamUrl, { credentials: testCredentials(service) }) });
  const master = await useTestDatabase('masterdata');
  await withOwnerDatabase(master, seedMasterdata);
  const masterdata = await buildMasterdata({ db: master.db as Kysely<MasterdataDatabase>, logger: false, databaseUrl: master.appUrl, credentials: testCredentials('masterdata'), peer: peerUrls('masterdata', { iam: iamUrl }), auth: auth('masterdata') });
  const masterdataUrl = await masterdata.listen({ host: '127.0.0.1', port: masterdataPort });
  const coreDatabase = await useTestDatabase('core');
  await withOwnerDatabase(coreDatabase, seedCore);
  const core = await buildCore({ db: coreDatabase.db as Kysely<CoreDatabase>, logger: false, databaseUrl: coreDatabase.appUrl, peer: peerUrls('core', { masterdata: masterdataUrl, iam: iamUrl }), auth: auth('core'), credentials: testCredentials('core'), env: { LOOKUP_RECONCILE_AT: 'off' } });
  const coreUrl = await core.listen({ host: '127.0.0.1', port: 0 });
  const notificationDatabase = await useTestDatabase('notification');
  const notification = await buildNotification({
    db: notificationDatabase.db as Kysely<NotificationDatabase>, logger: false, credentials: testCredentials('notification'), auth: auth('notification'),
    peer: peerUrls('notification', { iam: iamUrl, core: coreUrl, masterdata: masterdataUrl }), env: { LOOKUP_RECONCILE_AT: 'off' },
  });
  const notificationUrl = await notification.listen({ host: '127.0.0.1', port: 0 });
  const reportingDatabase = await useTestDatabase('reporting');
  // Reporting's copies replicated from the services' databases, as the CLI provisions them on start.
  await (await useTestReporting(reportingDatabase, [coreDatabase, iamDatabase, master])).sync();
  const reporting = await buildReporting({ db: reportingDatabase.db as Kysely<ReportingDatabase>, logger: false, credentials: testCredentials('reporting'), peer: peerUrls('reporting', { iam: iamUrl }), auth: auth('reporting'), maxRetainedBytes: 1024 ** 3 });
  const reportingUrl = await reporting.listen({ host: '127.0.0.1', port: 0 });
  const urls: Record<string, string> = { iam: iamUrl, masterdata: masterdataUrl, core: coreUrl, notification: notificationUrl, reporting: reportingUrl };
  // Any service added since (npm run cli -- new service), on its own test database.
  const others = await buildOtherServices(Object.keys(urls), { auth, peer: (key) => urls[key] ?? `http://127.0.0.1:${masterdataPort}` });
  for (const [key, app] of Object.entries(others)) urls[key] = await app.listen({ host: '127.0.0.1', port: 0 });
  const env = Object.fromEntries(Object.entries(urls).map(([key, url]) => [peerUrlVariable(key), url]));
  const gateway = await buildGateway({ logger: false, upstreams: gatewayUpstreams(loadRegistry(undefined, {}), env), authSources: remoteAuthSources(iamUrl, { credentials: testCredentials('gateway') }), credentials: testCredentials('gateway') });
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: await freePort() });
  afterAll(async () => {
    await gateway.close();
    for (const app of [...Object.values(others), core, masterdata, notification, reporting, iam]) await app.close();
  });

  const services: Record<string, HttpServer> = { iam, masterdata, core, notification, reporting, ...others };
  let token = '';
  const signIn = async () => {
    const response = await iam.inject({ method: 'POST', url: '/api/v1/auth/login', payload: ADMIN, remoteAddress: `198.51.100.${Math.floor(Math.random() * 250) + 1}` });
    token = response.statusCode === 200 ? response.json<{ accessToken: string }>().accessToken : token;
  };
  await signIn();

  const outcome: Outcome = { requests: 0, serverErrors: [], notProblem: [], unnamed: [], statuses: {} };
  const record = (request: string, status: number, contentType: string, body: string) => {
    outcome.requests++;
    outcome.statuses[status] = (outcome.statuses[status] ?? 0) + 1;
    if (status >= 500) outcome.serverErrors.push({ request, status, body: body.slice(0, 300) });
    if (status >= 400 && !contentType.startsWith('application/problem+json')) outcome.notProblem.push({ request, status, contentType });
    if (status === 400) {
      const problem = JSON.parse(body) as { errors?: unknown[] };
      if (!problem.errors?.length) outcome.unnamed.push({ request, body: body.slice(0, 300) });
    }
  };

  const send = async (app: HttpServer, method: string, url: string, payload: string | undefined, label: string) => {
    const response = await app.inject({ method: method as 'GET', url, payload, headers: { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) } });
    record(`${label}: ${method} ${url.slice(0, 200)}${payload ? ` ${payload.slice(0, 120)}` : ''}`, response.statusCode, String(response.headers['content-type'] ?? ''), response.body);
    if (response.statusCode === 401 && !url.includes('/auth/')) await signIn();
  };

  // Builds one request for an operation in which `target` (a parameter name or body field) has `hostile`.
  const request = (operation: Operation, target?: { in: string; name: string; hostile: Hostile }) => {
    let path = operation.path;
    const query: string[] = [];
    for (const parameter of operation.parameters) {
      const hostile = target && target.in === parameter.in && target.name === parameter.name ? target.hostile : undefined;
      const valid = validValue(parameter.schema as Schema);
      if (!hostile && parameter.in === 'query' && !parameter.required) continue;
      const encoded = hostile ? encodeValue(hostile) : encodeURIComponent(String(valid));
      if (parameter.in === 'path') path = path.replace(`{${parameter.name}}`, encoded || 'x');
      else if (parameter.in === 'query') query.push(`${encodeURIComponent(parameter.name)}=${encoded}`);
    }
    let payload: string | undefined;
    if (operation.body) {
      const body = validValue(operation.body) as Record<string, unknown>;
      if (target?.in === 'body') {
        const hostile = target.hostile;
        body[target.name] = 'value' in hostile ? hostile.value : '__HOSTILE__';
        payload = JSON.stringify(body);
        if (!('value' in hostile)) payload = payload.replace('"__HOSTILE__"', 'json' in hostile ? hostile.json : hostile.raw);
      } else payload = JSON.stringify(body);
    }
    return { url: query.length > 0 ? `${path}?${query.join('&')}` : path, payload };
  };

  // Its time grows with every service's routes (about 2 minutes on a loaded 2-core machine today).
  it('answers every hostile request with a 4xx problem+json (400s naming the field), never a 5xx', { timeout: 300_000 }, async () => {
    const operations: Operation[] = [];
    for (const [service, app] of Object.entries(services)) operations.push(...operationsOf(service, app.swagger() as OpenAPIV3.Document));
    // Operations that end the administrator's sessions run last, so the rest are tried signed in.
    const last = (o: Operation) => (o.path.includes('/auth/') || o.method === 'DELETE' ? 1 : 0);
    operations.sort((a, b) => last(a) - last(b));
    expect(operations.length).toBeGreaterThan(50);
    let seed = SEED;
    for (const operation of operations) {
      const app = services[operation.service]!;
      const label = operation.service;
      const targets: { in: string; name: string }[] = [
        ...operation.parameters.filter((p) => p.in === 'path' || p.in === 'query').map((p) => ({ in: p.in, name: p.name })),
        ...Object.keys(operation.body?.properties ?? {}).map((name) => ({ in: 'body', name })),
      ];
      for (const target of targets) {
        for (const hostile of fc.sample(hostileValue, { numRuns: RUNS, seed: seed++ })) {
          const { url, payload } = request(operation, { ...target, hostile });
          await send(app, operation.method, url, payload, label);
        }
      }
      if (operation.body) {
        const { url } = request(operation);
        for (const payload of hostileBodies) await send(app, operation.method, url, payload, label);
      }
    }
    // The unauthenticated sign-in route, through a real gateway over a real socket.
    for (const payload of [...hostileBodies, JSON.stringify({ email: 'a\u0000@example.com', password: 'x' }), JSON.stringify({ email: 123, password: true }), JSON.stringify({ email: null, password: null })]) {
      const response = await fetch(`${gatewayUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
      record(`gateway: POST /api/v1/auth/login ${payload.slice(0, 80)}`, response.status, response.headers.get('content-type') ?? '', await response.text());
    }
    const summary = `hostile input: ${outcome.requests} requests to ${operations.length} operations, ${outcome.serverErrors.length} answered 5xx, statuses ${JSON.stringify(outcome.statuses)} (seed ${SEED})`;
    console.log(summary);
    expect(outcome.serverErrors, summary).toEqual([]);
    expect(outcome.notProblem, summary).toEqual([]);
    expect(outcome.unnamed, summary).toEqual([]);
  });

  it('merges every service\'s document into one valid OpenAPI 3 document with an operationId on every operation', async () => {
    const document = (await (await fetch(`${gatewayUrl}/docs/json`)).json()) as OpenAPIV3.Document & { 'x-unavailable': string[] };
    expect(document['x-unavailable']).toEqual([]);
    await SwaggerParser.validate(structuredClone(document));
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item ?? {}).filter((o): o is OpenAPIV3.OperationObject => typeof o === 'object' && o !== null && 'responses' in o));
    expect(operations.length).toBeGreaterThan(50);
    expect(operations.filter((o) => !o.operationId)).toEqual([]);
    expect(document.paths['/api/v1/reports']?.get?.operationId).toBe('getReports');
  });
});
