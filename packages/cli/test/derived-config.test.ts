import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry, serviceDefinitions, type ServiceDefinition } from '@archipelago/registry';
import { isDerived, loadConfig, serviceConfigSchemaOf } from '@archipelago/platform';
import Type from 'typebox';
import { cliKeyring } from '../src/credentials.ts';
import { generatedFiles } from '../src/generate/index.ts';
import { serviceEnvironment } from '../src/stack.ts';

type Compose = { services: Record<string, { environment?: Record<string, string>; depends_on?: Record<string, unknown> }> };

// Every variable a service's schema reads, from the registry alone: npm start, .env.example and compose follow.
describe('configuration derived from the registry', async () => {
  const registry = loadRegistry(undefined, {});
  const files = generatedFiles(registry, ['registry']);
  const envExample = files.get('.env.example')!;
  const composes = ['infra/docker-compose.yml', 'infra/docker-compose.production.yml'].map((f) => parse(files.get(f)!) as Compose);
  const dir = await mkdtemp(path.join(tmpdir(), 'archipelago-derived-config-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const keyring = await cliKeyring(registry, { ARCHIPELAGO_DATA_DIR: dir });

  for (const service of registry.services) {
    const schema = serviceConfigSchemaOf(service);
    const variables = Object.keys(schema.properties);
    const operatorSet = variables.filter((v) => !isDerived(schema.properties[v]!));
    const databaseUrl = service.stateful ? `postgresql://${service.database}_app:pw@127.0.0.1:5454/${service.database}` : undefined;

    it(`${service.key}: every variable of its schema reaches it under npm start, and the result validates`, () => {
      const parent = Object.fromEntries(operatorSet.map((v) => [v, `set-by-operator-${v}`]));
      const env = serviceEnvironment(registry, service, databaseUrl, parent, keyring.environmentOf(service.key));
      expect(variables.filter((v) => env[v] === undefined)).toEqual([]);
      const bare = serviceEnvironment(registry, service, databaseUrl, {}, keyring.environmentOf(service.key));
      expect(() => loadConfig(schema, bare)).not.toThrow();
    });

    it(`${service.key}: every variable the operator sets is in .env.example`, () => {
      expect(operatorSet.filter((v) => !new RegExp(`^#? ?${v}=`, 'm').test(envExample))).toEqual([]);
    });

    it(`${service.key}: every variable of its schema is in its compose block`, () => {
      for (const compose of composes) {
        expect(variables.filter((v) => !(v in (compose.services[service.hostname]?.environment ?? {})))).toEqual([]);
      }
    });
  }

  it('gives REDIS_URL and a Redis container to the services that use Redis (gateway, notification) and to nobody else', () => {
    const [dev] = composes;
    for (const service of ['gateway', 'notification']) {
      expect(dev!.services[service]?.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(dev!.services[service]?.depends_on).toHaveProperty('redis');
      expect(serviceEnvironment(registry, registry.service(service), undefined, { REDIS_URL: 'redis://r:6379' }).REDIS_URL).toBe('redis://r:6379');
    }
    expect(Object.keys(dev!.services.core?.environment ?? {})).not.toContain('REDIS_URL');
    expect(serviceEnvironment(registry, registry.service('core'), undefined, { REDIS_URL: 'redis://r:6379' }).REDIS_URL).toBeUndefined();
  });

  it('lists a job\'s schedule variable: LOOKUP_RECONCILE_AT reaches core and is in .env.example', () => {
    expect(envExample).toMatch(/^# LOOKUP_RECONCILE_AT=/m);
    expect(serviceEnvironment(registry, registry.service('core'), undefined, { LOOKUP_RECONCILE_AT: '03:00' }).LOOKUP_RECONCILE_AT).toBe('03:00');
  });

  it('follows a new variable declared in a service\'s config alone', () => {
    const definitions: Record<string, ServiceDefinition> = {
      ...serviceDefinitions,
      core: { ...serviceDefinitions.core, config: Type.Object({ CORE_BATCH_SIZE: Type.Integer({ default: 50, description: 'rows per batch' }) }) },
    };
    const changed = loadRegistry(definitions, {});
    const regenerated = generatedFiles(changed, ['registry']);
    expect(regenerated.get('.env.example')).toMatch(/^# CORE_BATCH_SIZE=50 +rows per batch$/m);
    const dev = parse(regenerated.get('infra/docker-compose.yml')!) as Compose;
    expect(dev.services.core?.environment?.CORE_BATCH_SIZE).toBe('${CORE_BATCH_SIZE:-50}');
    expect(serviceEnvironment(changed, changed.service('core'), undefined, { CORE_BATCH_SIZE: '7' }).CORE_BATCH_SIZE).toBe('7');
    expect(serviceEnvironment(changed, changed.service('masterdata'), undefined, { CORE_BATCH_SIZE: '7' }).CORE_BATCH_SIZE).toBeUndefined();
  });

  it('refuses a service variable that shadows one the platform defines', () => {
    const definitions: Record<string, ServiceDefinition> = {
      ...serviceDefinitions,
      core: { ...serviceDefinitions.core, config: Type.Object({ IAM_URL: Type.String() }) },
    };
    expect(() => serviceConfigSchemaOf(loadRegistry(definitions, {}).service('core'))).toThrow(/IAM_URL/);
  });
});
