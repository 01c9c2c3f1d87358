import { readdirSync } from 'node:fs';
import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { loadRegistry, RegistryError, serviceDefinitions, validateRegistry, type LookupDefinition, type ServiceDefinition } from '../src/index.ts';

const base = {
  layer: 'domain',
  label: 'x',
  routes: [],
} as const;

function issuesOf(definitions: Record<string, ServiceDefinition>) {
  return validateRegistry(definitions).map((i) => `${i.service}.${i.field}: ${i.message}`);
}

describe('the service registry', () => {
  it('declares every service folder, dependencies first, with the gateway on 4110', () => {
    const registry = loadRegistry(serviceDefinitions, {});
    const folders = readdirSync(new URL('../../services/', import.meta.url), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(registry.services.map((s) => s.key).sort()).toEqual(folders.sort());
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

  const thing = Type.Object({ id: Type.String(), code: Type.String(), name: Type.String(), version: Type.Integer() });
  const producer = { ...base, hostname: 'a', port: 1, database: 'a', events: { publishes: { 'thing.created': thing, 'thing.deleted': thing }, aggregateIds: { thing: 'code' } } } as const;
  const consumer = (extra: Partial<ServiceDefinition>): ServiceDefinition => ({ ...base, hostname: 'b', port: 2, database: 'b', dependsOn: ['a'], ...extra });
  const lookup = { table: 'things_lookup', from: 'a', entity: 'thing', key: 'code', columns: { name: 'text' } } as const;

  it('rejects events consumed that the producer does not publish, from a service it does not reach', () => {
    expect(issuesOf({ a: producer, b: consumer({ events: { consumes: [{ name: 'b.things', from: 'a', mode: 'group', types: ['thing.*', 'other.created'] }] } }) })).toEqual([
      'b.events.consumes: "other.created" is not published by "a"',
    ]);
    expect(issuesOf({ a: producer, b: consumer({ dependsOn: [], events: { consumes: [{ name: 'b.things', from: 'a', mode: 'group', types: ['thing.created'] }] } }) })).toEqual([
      'b.events.consumes: b.things reads from "a", which is in neither dependsOn nor calls',
    ]);
  });

  it('names each consumer "<service>.<what>" once, apart from the names the platform gives its own', () => {
    const consumes = (...names: string[]) => consumer({ events: { consumes: names.map((name) => ({ name, from: 'a', mode: 'group' as const, types: ['thing.created'] })) }, lookups: [lookup] });
    expect(issuesOf({ a: producer, b: consumes('b.things', 'b.other') })).toEqual([]);
    expect(issuesOf({ a: producer, b: consumes('b.things', 'b.things', 'other.things', 'b.lookups.a') })).toEqual([
      'b.events.consumes: consumer name "b.things" is used twice',
      'b.events.consumes: consumer name "other.things" must be "b.<what>" in lowercase words joined by dots',
      'b.events.consumes: consumer name "b.lookups.a" is used twice (the platform names its own subscriptions <service>.lookups.<producer> and <service>.<identity>-changes)',
    ]);
    expect(issuesOf({ a: producer, b: consumer({ events: { consumes: [{ name: 'b.things', from: 'a', mode: 'sometimes' as 'group', types: ['thing.*'] }] } }) })).toEqual([
      'b.events.consumes: mode of the subscription to "a" must be "group" or "broadcast", not "sometimes"',
    ]);
  });

  it('requires a TypeBox object as the payload schema of each published "<entity>.<what>" type', () => {
    expect(issuesOf({ a: { ...producer, events: { publishes: { 'thing.created': thing, 'Thing-Made': thing, 'thing.gone': Type.String() as never } } } })).toEqual([
      'a.events.publishes: "Thing-Made" must be "<entity>.<what happened>" in kebab-case, e.g. "order.status-changed"',
      'a.events.publishes: the payload schema of "thing.gone" must be a TypeBox object (Type.Object)',
    ]);
  });

  it("requires a lookup's key to be the aggregate id its producer's events carry, or mapped explicitly (keyFrom)", () => {
    const withLookup = (extra: Partial<LookupDefinition>) => consumer({ lookups: [{ ...lookup, ...extra }] });
    expect(issuesOf({ a: producer, b: withLookup({}) })).toEqual([]);
    expect(issuesOf({ a: producer, b: withLookup({ key: 'id' }) })).toEqual([
      'b.lookups: things_lookup is keyed by "id", but "a"\'s thing events carry "code" as their aggregate id; key it by "code" or map it (keyFrom)',
    ]);
    // Mapped: the copy's key column thing_id holds the master's id, taken from events and export alike.
    expect(issuesOf({ a: producer, b: withLookup({ key: 'thing_id', keyFrom: 'id', keyType: 'text' }) })).toEqual([]);
    expect(issuesOf({ a: producer, b: withLookup({ key: 'thing_id', keyFrom: 'uuid' }) })).toEqual([
      'b.lookups: things_lookup copies "uuid", which "a"\'s thing.created payload does not carry',
    ]);
    expect(issuesOf({ a: { ...producer, events: { publishes: producer.events.publishes } }, b: withLookup({}) })).toEqual([
      'b.lookups: things_lookup copies "thing", but "a" does not declare its aggregate id (events.aggregateIds)',
    ]);
    expect(issuesOf({ a: producer, b: withLookup({ entity: 'gadget' }) })).toEqual([
      'b.lookups: things_lookup copies "gadget", but "a" does not declare its aggregate id (events.aggregateIds)',
      'b.lookups: things_lookup copies "gadget", of which "a" publishes no events',
    ]);
  });

  it("declares a lookup's columns with types, each carried by the producer's payloads", () => {
    const withColumns = (columns: Record<string, string>, extra: Partial<LookupDefinition> = {}) => consumer({ lookups: [{ ...lookup, columns: columns as LookupDefinition['columns'], ...extra }] });
    expect(issuesOf({ a: producer, b: withColumns({ name: 'text', colour: 'text' }) })).toEqual([
      'b.lookups: things_lookup copies "colour", which "a"\'s thing.created payload does not carry',
    ]);
    expect(issuesOf({ a: producer, b: withColumns({ name: 'varchar(20)', version: 'integer', code: 'text' }, { keyType: 'json' as 'text' }) })).toEqual([
      'b.lookups: things_lookup.code has type "json"; a lookup column is one of text, integer, boolean, uuid',
      'b.lookups: things_lookup.name has type "varchar(20)"; a lookup column is one of text, integer, boolean, uuid',
      'b.lookups: things_lookup declares its key "code" among its columns',
    ]);
    expect(issuesOf({ a: producer, b: withColumns({ synced_at: 'text' }) })).toEqual([
      'b.lookups: things_lookup copies "synced_at", which "a"\'s thing.created payload does not carry',
      'b.lookups: things_lookup: "synced_at" is not a column name it may declare',
    ]);
  });

  it('derives the subscriptions the platform runs: declared consumers, one group per lookup producer, the identity provider\'s changes', () => {
    const registry = loadRegistry(serviceDefinitions, {});
    const subscriptions = (key: string) => registry.service(key).subscriptions.map((s) => `${s.name} ${s.mode} ${s.from} ${s.for}`);
    expect(subscriptions('core')).toEqual(['core.lookups.masterdata group masterdata lookups', 'core.iam-changes broadcast iam identity']);
    expect(subscriptions('notification')).toEqual(['notification.orders group core handler', 'notification.lookups.core group core lookups', 'notification.iam-changes broadcast iam identity']);
    expect(subscriptions('masterdata')).toEqual(['masterdata.iam-changes broadcast iam identity']);
    expect(subscriptions('iam')).toEqual([]);
    expect(subscriptions('gateway')).toEqual([]);
    expect(registry.service('core').subscriptions.find((s) => s.for === 'lookups')?.types).toEqual(['label.*', 'region.*', 'district.*', 'department.*', 'classification-code.*']);
  });

  it('requires one identity provider, publishing the user and role changes the others follow', () => {
    expect(issuesOf({ a: { ...producer, identity: true }, b: { ...consumer({}), identity: true } })).toEqual([
      'a.identity: the identity provider must publish user.created, user.updated, user.deleted, role.permissions-changed (every service that verifies tokens follows them)',
      'b.identity: the identity provider must publish user.created, user.updated, user.deleted, role.permissions-changed (every service that verifies tokens follows them)',
      'b.identity: only one service can be the identity provider (also: a)',
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

  it('checks that a department-scoped resource is one of the service\'s permissions', () => {
    const service = (departmentScoped: string[]) => ({ ...base, hostname: 'a', port: 1, database: '', permissions: ['orders:read', 'orders:write'], departmentScoped });
    expect(issuesOf({ a: service(['orders']) })).toEqual([]);
    expect(issuesOf({ a: service(['orders', 'invoices']) })).toEqual(['a.departmentScoped: "invoices" is not a resource of this service\'s permissions (orders)']);
  });

  it('checks semiSpaceMb: a whole number of MB from 1 to 64', () => {
    const service = (semiSpaceMb: number) => ({ ...base, hostname: 'a', port: 1, database: '', semiSpaceMb });
    expect(issuesOf({ a: service(16) })).toEqual([]);
    expect(issuesOf({ a: service(0) })).toEqual(['a.semiSpaceMb: 0 must be a whole number of MB from 1 to 64']);
    expect(issuesOf({ a: service(2.5) })).toEqual(['a.semiSpaceMb: 2.5 must be a whole number of MB from 1 to 64']);
  });

  it('checks replicas: a whole number from 1 to 16', () => {
    const service = (replicas: number) => ({ ...base, hostname: 'a', port: 1, database: '', replicas });
    expect(issuesOf({ a: service(2) })).toEqual([]);
    expect(issuesOf({ a: service(0) })).toEqual(['a.replicas: 0 must be a whole number from 1 to 16']);
    expect(issuesOf({ a: service(1.5) })).toEqual(['a.replicas: 1.5 must be a whole number from 1 to 16']);
  });

  it('makes every service with routes a peer of the edge, in its dependsOn or not', () => {
    const today = loadRegistry(serviceDefinitions, {});
    const gateway = today.service('gateway');
    // Whatever services there are: the routed ones the gateway does not start after are its calls.
    expect([...(gateway.calls ?? [])].sort()).toEqual(today.services.filter((s) => !s.edge && s.routes.length > 0 && !gateway.dependsOn?.includes(s.key)).map((s) => s.key).sort());
    const registry = loadRegistry({
      ...serviceDefinitions,
      'routed-later': { ...base, hostname: 'routed-later', port: 4999, database: '', routes: [{ prefix: '/api/v1/routed-later' }] },
    }, {});
    expect(registry.service('gateway').calls).toEqual([...(gateway.calls ?? []), 'routed-later']);
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
