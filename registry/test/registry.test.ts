import { describe, expect, it } from 'vitest';
import { loadRegistry, RegistryError, serviceDefinitions, validateRegistry, type ServiceDefinition } from '../src/index.ts';

const base = {
  layer: 'domain',
  label: 'x',
  routes: [],
} as const;

function issuesOf(definitions: Record<string, ServiceDefinition>) {
  return validateRegistry(definitions).map((i) => `${i.service}.${i.field}: ${i.message}`);
}

describe('the service registry', () => {
  it('declares the six services, dependencies first, with the gateway on 4110', () => {
    const registry = loadRegistry(serviceDefinitions, {});
    expect(registry.services.map((s) => s.key).sort()).toEqual(['core', 'gateway', 'iam', 'masterdata', 'notification', 'reporting']);
    expect(registry.service('gateway').port).toBe(4110);
    expect(registry.service('gateway').stateful).toBe(false);
    const order = registry.services.map((s) => s.key);
    for (const service of registry.services) {
      for (const dep of service.dependsOn ?? []) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(service.key));
    }
  });

  it('takes port overrides from <KEY>_PORT', () => {
    expect(loadRegistry(serviceDefinitions, { CORE_PORT: '5104' }).service('core').port).toBe(5104);
  });

  it('names the variable when a port override is not a port', () => {
    expect(() => loadRegistry(serviceDefinitions, { CORE_PORT: 'eighty' })).toThrow(/service "core", field "port": environment variable CORE_PORT="eighty"/);
  });

  it('rejects an override that collides with another service', () => {
    expect(() => loadRegistry(serviceDefinitions, { CORE_PORT: '4110' })).toThrow(RegistryError);
  });

  it('rejects duplicate ports and databases, naming both services', () => {
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: 'a' }, b: { ...base, hostname: 'b', port: 1, database: 'a' } })).toEqual([
      'b.port: 1 is already used by service "a"',
      'b.database: "a" must be the snake_case of the key, "b" (or "" for a stateless service)',
      'b.database: "a" is already used by service "a"',
    ]);
  });

  it('requires the database to be the snake_case of the key', () => {
    expect(issuesOf({ 'order-management': { ...base, hostname: 'o', port: 1, database: 'orders' } })).toEqual([
      'order-management.database: "orders" must be the snake_case of the key, "order_management" (or "" for a stateless service)',
    ]);
    expect(issuesOf({ 'order-management': { ...base, hostname: 'o', port: 1, database: 'order_management' } })).toEqual([]);
  });

  it('rejects a dependsOn that names no service', () => {
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: 'a', dependsOn: ['ghost'] } })).toEqual([
      'a.dependsOn: names "ghost", which is not a service (known: a)',
    ]);
  });

  it('rejects a dependency cycle and shows it', () => {
    expect(
      issuesOf({
        a: { ...base, hostname: 'a', port: 1, database: 'a', dependsOn: ['b'] },
        b: { ...base, hostname: 'b', port: 2, database: 'b', dependsOn: ['c'] },
        c: { ...base, hostname: 'c', port: 3, database: 'c', dependsOn: ['a'] },
      }),
    ).toEqual(['a.dependsOn: dependency cycle: a → b → c → a']);
  });

  it('allows a run-time call against the start order (no cycle), but only to a service that exists', () => {
    expect(
      issuesOf({
        a: { ...base, hostname: 'a', port: 1, database: 'a', calls: ['b'] },
        b: { ...base, hostname: 'b', port: 2, database: 'b', dependsOn: ['a'] },
      }),
    ).toEqual([]);
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: 'a', calls: ['ghost', 'a'] } })).toEqual([
      'a.calls: names "ghost", which is not a service (known: a)',
      'a.calls: a service does not call itself over HTTP',
    ]);
    const registry = loadRegistry(serviceDefinitions, {});
    expect(registry.service('iam').calls).toEqual(['masterdata']);
    expect(registry.services.map((s) => s.key).indexOf('iam')).toBeLessThan(registry.services.map((s) => s.key).indexOf('masterdata'));
  });

  it('rejects events consumed that the producer does not publish', () => {
    expect(
      issuesOf({
        a: { ...base, hostname: 'a', port: 1, database: 'a', events: { publishes: ['thing.created'] } },
        b: { ...base, hostname: 'b', port: 2, database: 'b', events: { consumes: [{ from: 'a', mode: 'group', types: ['thing.*', 'other.created'] }] } },
      }),
    ).toEqual(['b.events.consumes: "other.created" is not published by "a"']);
  });

  it('requires a subscription mode, and a group subscription for the events behind a lookup', () => {
    const a = { ...base, hostname: 'a', port: 1, database: 'a', events: { publishes: ['thing.created'], aggregateIds: { thing: 'code' } } } as const;
    const lookup = { table: 'things_lookup', from: 'a', entity: 'thing', key: 'code', columns: ['name'] };
    expect(issuesOf({ a, b: { ...base, hostname: 'b', port: 2, database: 'b', events: { consumes: [{ from: 'a', mode: 'sometimes' as 'group', types: ['thing.*'] }] } } })).toEqual([
      'b.events.consumes: mode of the subscription to "a" must be "group" or "broadcast", not "sometimes"',
    ]);
    expect(issuesOf({ a, b: { ...base, hostname: 'b', port: 2, database: 'b', events: { consumes: [{ from: 'a', mode: 'broadcast', types: ['thing.*'] }] }, lookups: [lookup] } })).toEqual([
      'b.lookups: things_lookup copies from "a", so events.consumes needs a "group" subscription to "a"',
    ]);
    expect(issuesOf({ a, b: { ...base, hostname: 'b', port: 2, database: 'b', events: { consumes: [{ from: 'a', mode: 'group', types: ['thing.*'] }, { from: 'a', mode: 'broadcast', types: ['thing.*'] }] }, lookups: [lookup] } })).toEqual([]);
  });

  it("requires a lookup's key to be the aggregate id its producer's events carry, of an entity it publishes", () => {
    const consumes = [{ from: 'a', mode: 'group', types: ['thing.*'] }] as const;
    const b = (lookup: { entity: string; key: string }) => ({ ...base, hostname: 'b', port: 2, database: 'b', events: { consumes }, lookups: [{ table: 'things_lookup', from: 'a', columns: ['name'], ...lookup }] });
    const a = { ...base, hostname: 'a', port: 1, database: 'a', events: { publishes: ['thing.created'], aggregateIds: { thing: 'id' } } };
    expect(issuesOf({ a, b: b({ entity: 'thing', key: 'id' }) })).toEqual([]);
    expect(issuesOf({ a, b: b({ entity: 'thing', key: 'code' }) })).toEqual([
      'b.lookups: things_lookup is keyed by "code", but "a"\'s thing events carry "id" as their aggregate id',
    ]);
    expect(issuesOf({ a: { ...a, events: { publishes: ['thing.created'] } }, b: b({ entity: 'thing', key: 'id' }) })).toEqual([
      'b.lookups: things_lookup copies "thing", but "a" does not declare its aggregate id (events.aggregateIds)',
    ]);
    expect(issuesOf({ a: { ...a, events: { publishes: ['thing.created'], aggregateIds: { thing: 'id', gadget: 'id' } } }, b: b({ entity: 'gadget', key: 'id' }) })).toEqual([
      'b.lookups: things_lookup copies "gadget", of which "a" publishes no events',
    ]);
  });

  it("checks jobs: a cron schedule, a unique dotted name, a variable name, and a database to keep their state", () => {
    const job = { name: 'things.prune', schedule: '0 * * * *', description: 'prunes' };
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: 'a', jobs: [job, { ...job, schedule: '0 2 * * *', scheduleVariable: 'THINGS_PRUNE_AT' }] } })).toEqual([
      'a.jobs: "things.prune" is declared twice',
    ]);
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: 'a', jobs: [{ ...job, name: 'Prune', schedule: '61 * * * *', scheduleVariable: 'lower' }] } })).toEqual([
      'a.jobs: name "Prune" must be lowercase words joined by dots, e.g. "outbox.prune"',
      'a.jobs: schedule of "Prune", "61 * * * *", is not a cron expression (5 fields, or 6 with seconds first)',
      'a.jobs: scheduleVariable of "Prune", "lower", must be an UPPER_SNAKE_CASE variable name',
    ]);
    expect(issuesOf({ a: { ...base, hostname: 'a', port: 1, database: '', jobs: [job] } })).toEqual([
      'a.database: a stateless service cannot keep lookup tables, run jobs or publish tables to reporting',
    ]);
  });

  it('checks routes: unique prefixes, and no route (a public one least of all) under another service\'s prefix', () => {
    const a = { ...base, hostname: 'a', port: 1, database: '', routes: [{ prefix: '/api/v1/auth' }, { prefix: '/api/v1/auth/login', public: true }] };
    expect(issuesOf({ a })).toEqual([]);
    expect(issuesOf({ a, b: { ...base, hostname: 'b', port: 2, database: '', routes: [{ prefix: '/api/v1/auth/reset', public: true }, { prefix: '/api/v1/auth' }] } })).toEqual([
      'b.routes: "/api/v1/auth" is declared twice (also by service "a")',
      'b.routes: public route "/api/v1/auth/reset" lies under "/api/v1/auth", which belongs to service "a"',
    ]);
    expect(issuesOf({ a: { ...a, routes: [{ prefix: '/x' }, { prefix: '/x' }] } })).toEqual(['a.routes: "/x" is declared twice']);
  });

  it('checks permissions: resource:read or resource:write, each declared by one service', () => {
    const a = { ...base, hostname: 'a', port: 1, database: '', permissions: ['things:read', 'things:write'] };
    expect(issuesOf({ a })).toEqual([]);
    expect(issuesOf({ a, b: { ...base, hostname: 'b', port: 2, database: '', permissions: ['things:read', 'Things:delete'] } })).toEqual([
      'b.permissions: "things:read" is declared twice (also by service "a")',
      'b.permissions: "Things:delete" must be "<resource>:read" or "<resource>:write", the resource in kebab-case',
    ]);
  });

  it('checks replicas: a whole number from 1 to 16', () => {
    const service = (replicas: number) => ({ ...base, hostname: 'a', port: 1, database: '', replicas });
    expect(issuesOf({ a: service(2) })).toEqual([]);
    expect(issuesOf({ a: service(0) })).toEqual(['a.replicas: 0 must be a whole number from 1 to 16']);
    expect(issuesOf({ a: service(1.5) })).toEqual(['a.replicas: 1.5 must be a whole number from 1 to 16']);
  });

  it('makes every service with routes a peer of the edge, in its dependsOn or not', () => {
    const registry = loadRegistry({
      ...serviceDefinitions,
      'audit-log': { ...base, hostname: 'audit-log', port: 4190, database: '', routes: [{ prefix: '/api/v1/audit' }] },
    }, {});
    expect(registry.service('gateway').calls).toEqual(['audit-log']);
    expect(loadRegistry(serviceDefinitions, {}).service('gateway').calls).toEqual([]);
  });

  it('reports every issue in one error message', () => {
    const error = (() => {
      try {
        loadRegistry({ a: { ...base, hostname: 'a', port: 0, database: 'x', dependsOn: ['a'] } }, {});
      } catch (e) {
        return e as RegistryError;
      }
      throw new Error('expected an error');
    })();
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.issues.map((i) => i.field)).toEqual(['port', 'database', 'dependsOn', 'dependsOn']);
    expect(error.message).toContain('service "a", field "port": 0 is not a TCP port');
  });
});
