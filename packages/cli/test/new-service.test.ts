import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serviceDefinitions } from '@archipelago/registry';
import { newService } from '../src/commands/new.ts';
import { scaffoldSpec, ScaffoldError } from '../src/scaffold/spec.ts';
import { copyRepository, linkWorkspace } from './repository-copy.ts';

// The trial of issue 10 as a test: a new user adds audit-log (a group consumer of core's orders,
// a departments lookup, a permission, a guarded route). The end-to-end run through the gateway is
// `npm run test:scaffold` (tests/scaffold/); this is its cheap part, in every `npm test`.
const AUDIT_LOG = { key: 'audit-log', consumes: ['core:order.created'], lookups: ['masterdata:department:name,is_active'] };

describe('npm run cli -- new service', () => {
  it('derives the registry entry: a free port, the snake_case database, a guarded route, a named consumer, a lookup typed from the payload', () => {
    const { definition } = scaffoldSpec(AUDIT_LOG, serviceDefinitions);
    const taken = new Set<number>(Object.values(serviceDefinitions).map((d) => d.port));
    expect(taken.has(definition.port)).toBe(false);
    expect(definition).toMatchObject({
      database: 'audit_log', routes: [{ prefix: '/api/v1/audit-log' }], permissions: ['audit-log:read'], dependsOn: ['iam'], calls: ['core', 'masterdata'],
      events: { consumes: [{ name: 'audit-log.core', from: 'core', mode: 'group', types: ['order.created'] }] },
      lookups: [{ table: 'departments_lookup', from: 'masterdata', entity: 'department', key: 'code', columns: { name: 'text', is_active: 'boolean' } }],
      jobs: [{ name: 'lookups.reconcile' }],
    });
    expect(scaffoldSpec({ key: 'order-copy', lookups: ['core:order:status,quantity'] }, serviceDefinitions).definition.lookups).toEqual([
      { table: 'orders_lookup', from: 'core', entity: 'order', key: 'id', keyType: 'uuid', columns: { status: 'text', quantity: 'integer' } },
    ]);
  });

  it('refuses what the registry would refuse, naming the service and field', () => {
    const refused = (request: Parameters<typeof scaffoldSpec>[0]) => {
      try {
        scaffoldSpec(request, serviceDefinitions);
      } catch (error) {
        expect(error).toBeInstanceOf(ScaffoldError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused({ key: 'core' })).toMatch(/already in the registry/);
    expect(refused({ key: 'Audit_Log' })).toMatch(/field "key": must be kebab-case/);
    expect(refused({ key: 'audit-log', consumes: ['core:order.shipped'] })).toMatch(/field "events.consumes": "order.shipped" is not published by "core"/);
    expect(refused({ key: 'audit-log', lookups: ['masterdata:shelf:name'] })).toMatch(/does not declare its aggregate id/);
    expect(refused({ key: 'audit-log', lookups: ['masterdata:department:colour'] })).toMatch(/copies "colour", which "masterdata"'s department.created payload does not carry/);
    expect(refused({ key: 'audit-log', consumes: ['core'] })).toMatch(/--consumes "core" must be/);
    expect(refused({ key: 'audit-log', resource: 'orders' })).toMatch(/"\/api\/v1\/orders" is declared twice/);
  });

  describe('in a copy of the repository', async () => {
    const copy = await copyRepository();
    afterAll(() => copy.remove());
    const cli = (...args: string[]) => copy.run(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args]);
    const lines: string[] = [];
    const code = await newService(AUDIT_LOG, (line) => lines.push(line), { root: copy.root });

    it('writes services/audit-log/ and its registry entry, and changes nothing else', () => {
      expect(code, lines.join('\n')).toBe(0);
      const changed = copy.changed();
      expect(changed).toContain('registry/src/services.ts');
      expect(changed).toEqual(expect.arrayContaining(['services/audit-log/package.json', 'services/audit-log/src/main.ts', 'services/audit-log/src/app.ts', 'services/audit-log/test/audit-log.test.ts']));
      expect(changed.some((file) => /^services\/audit-log\/migrations\/\d{14}_create_audit_log\.ts$/.test(file))).toBe(true);
      expect(changed.filter((file) => file !== 'registry/src/services.ts' && !file.startsWith('services/audit-log/'))).toEqual([]);
    });

    it('is a valid registry entry that the platform and the gateway follow (variables, database, roles)', async () => {
      const probe = `
        import { envPrefix, loadRegistry } from '@archipelago/registry';
        import { serviceConfigSchemaOf } from '@archipelago/platform';
        import { provisioningPlan } from '@archipelago/platform/provision';
        const registry = loadRegistry(undefined, { AUDIT_LOG_PORT: '4999' });
        const service = registry.service('audit-log');
        const plan = JSON.stringify(provisioningPlan([service]));
        console.log(JSON.stringify({
          port: service.port, prefix: envPrefix(service.key), database: service.database,
          own: Object.keys(serviceConfigSchemaOf(service).properties),
          gateway: Object.keys(serviceConfigSchemaOf(registry.service('gateway')).properties),
          roles: [...plan.matchAll(/"role":"([a-z_]+)"/g)].map((m) => m[1]),
        }));`;
      const result = await copy.run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe]);
      expect(result.code, result.output).toBe(0);
      const seen = JSON.parse(result.output.trim().split('\n').pop()!) as { port: number; prefix: string; database: string; own: string[]; gateway: string[]; roles: string[] };
      expect(seen).toMatchObject({ port: 4999, prefix: 'AUDIT_LOG', database: 'audit_log' });
      expect(seen.own).toEqual(expect.arrayContaining(['DATABASE_URL', 'IAM_URL', 'CORE_URL', 'MASTERDATA_URL', 'LOOKUP_RECONCILE_AT']));
      expect(seen.gateway).toContain('AUDIT_LOG_URL');
      expect([...new Set(seen.roles)].sort()).toEqual(['audit_log_app', 'audit_log_owner']);
    });

    it('leaves infra/ stale until `generate`, which derives it; then `generate --check` passes', { timeout: 120_000 }, async () => {
      const stale = await cli('generate', '--check');
      expect(stale.code, stale.output).toBe(1);
      expect(stale.output).toMatch(/stale: .*infra\/docker-compose\.yml/);
      expect((await cli('generate')).code).toBe(0);
      const fresh = await cli('generate', '--check');
      expect(fresh.code, fresh.output).toBe(0);
      const compose = await readFile(path.join(copy.root, 'infra/docker-compose.yml'), 'utf8');
      expect(compose).toMatch(/audit-log:/);
      expect(compose).toMatch(/AUDIT_LOG_URL: http:\/\/audit-log:4103/);
      expect(await readFile(path.join(copy.root, 'infra/init-databases.sql'), 'utf8')).toContain('audit_log_owner');
    });

    it('type-checks', { timeout: 240_000 }, async () => {
      await linkWorkspace(copy, 'services/audit-log'); // what `npm install` does
      await writeFile(path.join(copy.root, 'tsconfig.audit-log.json'), JSON.stringify({ extends: './tsconfig.base.json', include: ['services/audit-log'] }));
      const tsc = await copy.run(process.execPath, [path.join(copy.root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.audit-log.json', '--noEmit']);
      expect(tsc.code, tsc.output).toBe(0);
    });
  });
});
