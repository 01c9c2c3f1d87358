import { snakeCase } from '@archipelago/registry';
import type { ScaffoldSpec } from './spec.ts';

/**
 * The files of a new service, by path under `services/<key>/`: the one place the service
 * template lives. `app.ts` hands its consumers' handlers to `composeService`, which starts
 * consumers, lookups and jobs from the registry entry (docs/architecture.md); `main.ts` runs it;
 * one migration creates its own tables; one test drives it through a stand-in producer.
 */
export function serviceFiles(spec: ScaffoldSpec, now = new Date()): Record<string, string> {
  const names = namesOf(spec);
  const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14);
  return {
    'package.json': packageJson(spec),
    'src/main.ts': mainTs(spec, names),
    'src/app.ts': appTs(spec, names),
    'src/database.ts': databaseTs(spec, names),
    'src/seed.ts': seedTs(),
    'src/recorded-events.repository.ts': repositoryTs(names),
    'src/recorded-events.routes.ts': routesTs(spec, names),
    [`migrations/${stamp}_create_${names.snake}.ts`]: migrationTs(spec),
    [`test/${spec.key}.test.ts`]: testTs(spec, names),
  };
}

interface Names {
  /** `AuditLog` */
  readonly pascal: string;
  /** `audit_log` */
  readonly snake: string;
  /** `AuditLogDatabase` */
  readonly database: string;
}

function namesOf(spec: ScaffoldSpec): Names {
  const pascal = spec.key.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  return { pascal, snake: snakeCase(spec.key), database: `${pascal}Database` };
}

const q = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function packageJson(spec: ScaffoldSpec): string {
  return `${JSON.stringify({
    name: `@archipelago/${spec.key}`,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      start: 'node --import tsx src/main.ts',
      build: 'node ../../packages/cli/build.mjs',
      check: 'tsc -p ../../tsconfig.json --noEmit',
      lint: 'eslint --max-warnings 0 .',
      test: `vitest run --passWithNoTests --root ../.. services/${spec.key}/`,
    },
    dependencies: { '@archipelago/platform': '*', '@archipelago/registry': '*', kysely: '^0.28.18' },
  }, null, 2)}\n`;
}

function mainTs(spec: ScaffoldSpec, names: Names): string {
  return `import { runService } from '@archipelago/platform';
import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';
import { buildApp } from './app.ts';
import type { ${names.database} } from './database.ts';

await runService<${names.database}>({
  service: ${q(spec.key)},
  buildApp: (deps) =>
    buildApp({ ...deps, auth: createAuth({ sources: remoteAuthSources(deps.peer('iam'), { credentials: deps.credentials }) }) }),
});
`;
}

function appTs(spec: ScaffoldSpec, names: Names): string {
  const handlers = spec.consumes.map((c) => `      ${q(c.name)}: (trx, events) => recorded.record(trx, events),`);
  return `import { checkDatabase, createHttpServer, type AppDeps, type HttpServer } from '@archipelago/platform';
import { protectApiRoutes, type Auth } from '@archipelago/platform/auth';
import { composeService } from '@archipelago/platform/compose';
import type { ServiceCredentials } from '@archipelago/platform/internal-auth';
import type { ${names.database} } from './database.ts';
import { recordedEventsRepository } from './recorded-events.repository.ts';
import { recordedEventRoutes } from './recorded-events.routes.ts';

export interface ${names.pascal}Deps extends AppDeps<${names.database}> {
  readonly auth: Auth;
  readonly credentials: ServiceCredentials;
}

/** Composition root of ${spec.key}. */
export async function buildApp(deps: ${names.pascal}Deps): Promise<HttpServer> {
  const { db, logger, credentials, auth } = deps;
  const app = await createHttpServer({ service: ${q(spec.key)}, logger, readiness: () => checkDatabase(db), credentials });
  // Every /api route registered below needs a token with its permission (GET: ${spec.resource}:read).
  protectApiRoutes(app, auth);
  const recorded = recordedEventsRepository(db);
  // The registry entry's consumers${spec.lookups.length > 0 ? ', lookups and jobs' : ''} are started by the platform; a handler per consumer,
  // by its name, receives only its declared types (typed payloads), in the transaction that moves its cursor.
  await composeService(app, {
    service: ${q(spec.key)}, deps, auth,
${handlers.length > 0 ? `    handlers: {\n${handlers.join('\n')}\n    },\n` : ''}  });
  recordedEventRoutes(app, recorded);
  return app;
}
`;
}

function databaseTs(spec: ScaffoldSpec, names: Names): string {
  const tsType = (type: string | undefined) => (type === 'boolean' ? 'boolean' : type === 'integer' ? 'number' : 'string');
  const lookupTables = spec.lookups.map((lookup) => {
    const columns = Object.entries(lookup.columns).map(([column, type]) => `    ${column}: ${tsType(type)} | null;`);
    return `  /** Read-only copy of ${lookup.from}'s ${lookup.entity}, created and kept by the platform from the registry. */
  ${lookup.table}: {\n    ${lookup.key}: ${tsType(lookup.keyType)};\n${columns.join('\n')}\n    source_version: number;\n  };`;
  });
  return `import type { ColumnType } from 'kysely';

export interface RecordedEventTable {
  id: string;
  type: string;
  source: string;
  aggregate_type: string;
  aggregate_id: string;
  payload: ColumnType<unknown, string, never>;
  occurred_at: ColumnType<Date, Date, never>;
  recorded_at: ColumnType<Date, never, never>;
}

/** The ${names.snake} schema as Kysely sees it. */
export interface ${names.database} {
  recorded_events: RecordedEventTable;
${lookupTables.join('\n')}${lookupTables.length > 0 ? '\n' : ''}}
`;
}

function seedTs(): string {
  return `import type { Kysely } from 'kysely';

// Nothing to seed yet; \`npm start\` runs this on every start, so keep it idempotent.
export async function seed(_db: Kysely<unknown>): Promise<void> {}
`;
}

function repositoryTs(names: Names): string {
  return `import type { Kysely, Transaction } from 'kysely';
import type { EventEnvelope } from '@archipelago/platform/events';
import type { ${names.database} } from './database.ts';

/** A recorded event as the API shows it. */
export interface RecordedEvent {
  id: string;
  type: string;
  source: string;
  aggregate_type: string;
  aggregate_id: string;
  payload: unknown;
  occurred_at: string;
}

/** The only code that writes recorded_events. */
export function recordedEventsRepository(db: Kysely<${names.database}>) {
  return {
    // In the consumer's transaction: a redelivered event is already there and is skipped.
    async record(trx: Transaction<${names.database}>, events: readonly EventEnvelope[]): Promise<void> {
      if (events.length === 0) return;
      await trx
        .insertInto('recorded_events')
        .values(events.map((event) => ({
          id: event.id, type: event.type, source: event.source, aggregate_type: event.aggregate.type, aggregate_id: event.aggregate.id,
          payload: JSON.stringify(event.payload), occurred_at: new Date(event.occurredAt),
        })))
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    },

    // Newest first, optionally of one type.
    async list(page: { limit: number; offset: number; type?: string }): Promise<{ items: RecordedEvent[]; total: number }> {
      let query = db.selectFrom('recorded_events');
      if (page.type !== undefined) query = query.where('type', '=', page.type);
      const [rows, count] = await Promise.all([
        query.select(['id', 'type', 'source', 'aggregate_type', 'aggregate_id', 'payload', 'occurred_at'])
          .orderBy('occurred_at', 'desc').orderBy('id', 'desc').limit(page.limit).offset(page.offset).execute(),
        query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map((row) => ({ ...row, occurred_at: row.occurred_at.toISOString() })), total: Number(count.n) };
    },
  };
}

export type RecordedEventsRepository = ReturnType<typeof recordedEventsRepository>;
`;
}

function routesTs(spec: ScaffoldSpec, names: Names): string {
  return `import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { RecordedEventsRepository } from './recorded-events.repository.ts';

const RecordedEvent = Type.Object({
  id: Type.String({ format: 'uuid' }),
  type: Type.String(),
  source: Type.String(),
  aggregate_type: Type.String(),
  aggregate_id: Type.String(),
  payload: Type.Unknown(),
  occurred_at: Type.String({ format: 'date-time' }),
});

/** ${spec.key}'s API: what its consumers recorded (guarded by ${spec.resource}:read through protectApiRoutes). */
export function recordedEventRoutes(app: HttpServer, recorded: RecordedEventsRepository): void {
  app.get(
    ${q(`/api/v1/${spec.resource}`)},
    {
      schema: {
        tags: [${q(spec.resource)}],
        description: 'Events ${names.snake} recorded, newest first.',
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
          offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          type: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9-]*\\\\.[a-z][a-z0-9-]*$', maxLength: 100 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(RecordedEvent), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }) },
      },
    },
    async (request) => {
      const { limit, offset, type } = request.query;
      return { ...(await recorded.list({ limit, offset, ...(type === undefined ? {} : { type }) })), limit, offset };
    },
  );
}
`;
}

function migrationTs(spec: ScaffoldSpec): string {
  const jobs = (spec.definition.jobs ?? []).length > 0;
  const imports = [`import { sql, type Kysely } from 'kysely';`, ...(jobs ? [`import { createJobTablesV1, dropJobTablesV1 } from '@archipelago/platform/jobs';`] : [])];
  return `${imports.join('\n')}

// ${spec.key}'s first tables: what its consumers record${jobs ? ", and its jobs' status" : ''}. (Lookup tables, consumer cursors
// and dead letters follow from the registry entry: the platform creates them after the migrations.)
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql\`
    CREATE TABLE recorded_events (
      id             uuid PRIMARY KEY,
      type           text NOT NULL,
      source         text NOT NULL,
      aggregate_type text NOT NULL,
      aggregate_id   text NOT NULL,
      payload        jsonb NOT NULL,
      occurred_at    timestamptz NOT NULL,
      recorded_at    timestamptz NOT NULL DEFAULT now()
    )\`.execute(db);
  await sql\`CREATE INDEX recorded_events_newest ON recorded_events (occurred_at DESC, id DESC)\`.execute(db);
${jobs ? '  await createJobTablesV1(db);\n' : ''}}

export async function down(db: Kysely<unknown>): Promise<void> {
${jobs ? '  await dropJobTablesV1(db);\n' : ''}  await sql\`DROP TABLE recorded_events\`.execute(db);
}
`;
}

// A TypeScript literal that satisfies a payload schema (as the registry declares it), with \`id\` for its uuids.
function sampleLiteral(schema: unknown): string {
  const s = (schema ?? {}) as { type?: string; format?: string; const?: unknown; anyOf?: unknown[]; properties?: Record<string, unknown>; required?: string[] };
  if (s.const !== undefined) return JSON.stringify(s.const).replace(/"/g, "'");
  if (s.anyOf) return sampleLiteral(s.anyOf[0]);
  switch (s.type) {
    case 'string': return s.format === 'uuid' ? 'id' : s.format === 'date-time' ? 'new Date().toISOString()' : "'sample'";
    case 'integer': case 'number': return '1';
    case 'boolean': return 'true';
    case 'null': return 'null';
    case 'array': return '[]';
    case 'object': {
      const required = new Set(s.required ?? []);
      const fields = Object.entries(s.properties ?? {}).filter(([name]) => required.has(name)).map(([name, value]) => {
        const literal = sampleLiteral(value);
        return literal === name ? name : `${/^[A-Za-z_$][\w$]*$/.test(name) ? name : q(name)}: ${literal}`;
      });
      return `{ ${fields.join(', ')} }`;
    }
    default: return 'null';
  }
}

function testTs(spec: ScaffoldSpec, names: Names): string {
  const first = spec.consumes[0];
  const sampleType = first ? (first.types[0]!.endsWith('.*') ? `${first.types[0]!.slice(0, -2)}.created` : first.types[0]!) : undefined;
  const payload = first ? sampleLiteral(spec.publishedBy(first.from, sampleType!)) : '';
  const producerBlock = first
    ? `
// A stand-in for ${first.from}: its real event feed over a test copy of its database, where the test commits events.
async function startProducer(source: string) {
  const database = await useTestDatabase(source);
  const app = await createHttpServer({ service: source, logger: false, credentials: testCredentials(source) });
  await registerEventFeed(app, { source, schema: loadRegistry().service(source).database, db: database.db, listenUrl: database.appUrl });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    async publish(type: string, aggregateId: string, payload: object) {
      await database.db.transaction().execute((trx) => appendEvents(trx, [{ type, aggregateType: type.split('.')[0]!, aggregateId, aggregateVersion: 1, payload }]));
    },
    close: () => app.close(),
  };
}
`
    : '';
  const imports = [
    ...(first ? [`import { randomUUID } from 'node:crypto';`] : []),
    `import { afterAll, describe, expect, it } from 'vitest';`,
    ...(first ? [`import { createHttpServer } from '@archipelago/platform';`] : []),
    `import { createAuth, remoteAuthSources } from '@archipelago/platform/auth';`,
    ...(first ? [`import { appendEvents, registerEventFeed } from '@archipelago/platform/events';`] : []),
    `import { freePort, useTestDatabase } from '@archipelago/platform/testing';`,
    `import { testCredentials } from '@archipelago/platform/testing/credentials';`,
    `import { asUser, startTestIdentity } from '@archipelago/platform/testing/identity';`,
    ...(first ? [`import { loadRegistry } from '@archipelago/registry';`] : []),
    `import { buildApp } from '../src/app.ts';`,
    `import type { ${names.database} } from '../src/database.ts';`,
    `import type { Kysely } from 'kysely';`,
  ];
  const route = `/api/v1/${spec.resource}`;
  return `${imports.sort((a, b) => order(a) - order(b)).join('\n')}
${producerBlock}
describe(${q(spec.key)}, async () => {
  const database = await useTestDatabase(${q(spec.key)});
  const identity = await startTestIdentity({ roles: { admin: [${q(`${spec.resource}:read`)}], outsider: [] } });
  const unreachable = \`http://127.0.0.1:\${await freePort()}\`;
${first ? `  const producer = await startProducer(${q(first.from)});\n` : ''}  const peers: Record<string, string> = { iam: identity.url${first ? `, ${first.from.includes('-') ? q(first.from) : first.from}: producer.url` : ''} };
  const credentials = testCredentials(${q(spec.key)});
  const app = await buildApp({
    db: database.db as Kysely<${names.database}>, logger: false, env: { LOOKUP_RECONCILE_AT: 'off' }, credentials,
    auth: createAuth({ sources: remoteAuthSources(identity.url, { credentials }), sessionTtlMs: 0 }),
    peer: (key) => peers[key] ?? unreachable,
  });
  afterAll(async () => {
    await app.close();
${first ? '    await producer.close();\n' : ''}    await identity.close();
  });
  const admin = asUser(app, await identity.token(identity.user({ roles: ['admin'] })));
  const outsider = asUser(app, await identity.token(identity.user({ roles: ['outsider'] })));

  it('guards ${route}: 401 without a token, 403 without ${spec.resource}:read', async () => {
    expect((await app.inject({ url: ${q(route)} })).statusCode).toBe(401);
    expect((await outsider.inject({ url: ${q(route)} })).statusCode).toBe(403);
    expect((await admin.inject({ url: ${q(route)} })).statusCode).toBe(200);
  });
${first ? `
  it('records ${sampleType} from ${first.from} once and serves it', async () => {
    const id = randomUUID();
    // A payload as ${first.from} declares it for ${sampleType} (registry/src/events.ts): appended events are checked under test.
    await producer.publish(${q(sampleType!)}, id, ${payload});
    let items: { aggregate_id: string; type: string }[] = [];
    for (let attempt = 0; attempt < 400 && items.length === 0; attempt++) {
      items = (await admin.inject({ url: ${q(`${route}?limit=500`)} })).json<{ items: { aggregate_id: string; type: string }[] }>().items.filter((item) => item.aggregate_id === id);
      if (items.length === 0) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(items).toMatchObject([{ aggregate_id: id, type: ${q(sampleType!)} }]);
  });
` : ''}});
`;
}

// node: first, then packages, then local files, as the other services order their imports.
function order(line: string): number {
  if (line.includes("'node:")) return 0;
  if (line.includes("'vitest'")) return 1;
  if (line.includes("'kysely'")) return 2;
  if (line.includes("'@archipelago/")) return 3;
  return 4;
}
