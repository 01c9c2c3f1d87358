import { Cron } from 'croner';
import { serviceDefinitions } from './services.ts';
import type { BackingService, LookupColumnType, LookupDefinition, Registry, Service, ServiceDefinition, ServiceSubscription } from './types.ts';

/** One problem found in the registry, naming the service and field. */
export interface RegistryIssue {
  readonly service: string;
  readonly field: string;
  readonly message: string;
}

/** Thrown when the registry is invalid; lists every issue, not just the first. */
export class RegistryError extends Error {
  constructor(readonly issues: readonly RegistryIssue[]) {
    super(
      'The service registry (registry/src/services.ts) is invalid:\n' +
        issues.map((i) => `  - service "${i.service}", field "${i.field}": ${i.message}`).join('\n') +
        '\nFix the registry and run the command again.',
    );
    this.name = 'RegistryError';
  }
}

/** `order-management` → `order_management` (seed 001 rule 2). */
export function snakeCase(key: string): string {
  return key.replace(/-/g, '_');
}

/** `order-management` → `ORDER_MANAGEMENT`, the prefix of a service's environment variables. */
export function envPrefix(key: string): string {
  return snakeCase(key).toUpperCase();
}

const KEY_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const JOB_NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const VARIABLE = /^[A-Z][A-Z0-9_]*$/;
const PERMISSION = /^[a-z][a-z0-9]*(-[a-z0-9]+)*:(read|write)$/;
const EVENT_TYPE = /^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const COLUMN = /^[a-z][a-z0-9_]*$/;

/** The SQL types a lookup column may be declared with. */
export const LOOKUP_COLUMN_TYPES: readonly LookupColumnType[] = ['text', 'integer', 'boolean', 'uuid'];

/** What a service that verifies tokens follows of the identity provider: users' and roles' changes. */
export const IDENTITY_CHANGES = ['user.created', 'user.updated', 'user.deleted', 'role.permissions-changed'] as const;

/** The master's field a lookup's key is copied from: the aggregate id, unless `keyFrom` maps another. */
export function lookupSourceKey(lookup: LookupDefinition): string {
  return lookup.keyFrom ?? lookup.key;
}

/** Whether an event type matches a subscription's pattern (`label.created`, or `label.*`). */
export function typeMatches(pattern: string, type: string): boolean {
  return pattern.endsWith('.*') ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}

// A service verifies the identity provider's tokens when it serves guarded routes and talks to it.
function verifiesTokens(def: ServiceDefinition, identity: string | undefined): identity is string {
  return identity !== undefined && def.database !== '' && !def.identity && !def.edge && def.routes.some((route) => !route.public) &&
    [...(def.dependsOn ?? []), ...(def.calls ?? [])].includes(identity);
}

/**
 * Every subscription the platform runs for a service: its declared `consumes`, one group per
 * producer its lookups copy from, and the identity provider's changes if it verifies tokens.
 */
// A service that publishes or follows events talks to the event transport, RabbitMQ among them:
// that follows from its events, so it is not declared again in `uses`.
function usesOf(def: ServiceDefinition, subscriptions: readonly ServiceSubscription[]): readonly BackingService[] | undefined {
  const declared = def.uses ?? [];
  const eventful = Object.keys(def.events?.publishes ?? {}).length > 0 || subscriptions.length > 0;
  if (!eventful || declared.includes('rabbitmq')) return def.uses;
  return [...declared, 'rabbitmq'];
}

function subscriptionsOf(key: string, def: ServiceDefinition, definitions: Readonly<Record<string, ServiceDefinition>>): ServiceSubscription[] {
  const declared = (def.events?.consumes ?? []).map((sub): ServiceSubscription => ({ ...sub, for: 'handler' }));
  const producers = [...new Set((def.lookups ?? []).map((lookup) => lookup.from))];
  const lookups = producers.map((from): ServiceSubscription => ({
    name: `${key}.lookups.${from}`, from, mode: 'group', for: 'lookups',
    types: [...new Set((def.lookups ?? []).filter((lookup) => lookup.from === from).map((lookup) => `${lookup.entity}.*`))],
  }));
  const identity = Object.keys(definitions).find((candidate) => definitions[candidate]!.identity);
  const changes: ServiceSubscription[] = verifiesTokens(def, identity)
    ? [{ name: `${key}.${identity}-changes`, from: identity, mode: 'broadcast', types: [...IDENTITY_CHANGES], for: 'identity' }]
    : [];
  return [...declared, ...lookups, ...changes];
}

// What a payload schema says its events carry (a TypeBox object's properties).
function payloadProperties(schema: unknown): readonly string[] | undefined {
  const object = schema as { type?: unknown; properties?: unknown } | undefined;
  return object?.type === 'object' && typeof object.properties === 'object' && object.properties !== null ? Object.keys(object.properties) : undefined;
}

/** Whether `pattern` is a cron expression the job scheduler (croner) accepts: 5 fields, or 6 with seconds. */
export function isCronExpression(pattern: string): boolean {
  if (!/^\S+( \S+){4,5}$/.test(pattern.trim())) return false;
  try {
    new Cron(pattern, { timezone: 'UTC' });
    return true;
  } catch {
    return false;
  }
}

/** Checks a registry's definitions; returns every issue found. */
export function validateRegistry(definitions: Readonly<Record<string, ServiceDefinition>>): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  const keys = Object.keys(definitions);
  const add = (service: string, field: string, message: string) => issues.push({ service, field, message });
  const portOwner = new Map<number, string>();
  const databaseOwner = new Map<string, string>();
  const prefixOwner = new Map<string, string>();
  const permissionOwner = new Map<string, string>();

  for (const [key, def] of Object.entries(definitions)) {
    if (!KEY_PATTERN.test(key)) add(key, 'key', 'must be kebab-case (lowercase letters, digits and single dashes)');
    if (!Number.isInteger(def.port) || def.port < 1 || def.port > 65535) {
      add(key, 'port', `${def.port} is not a TCP port (1–65535)`);
    } else if (portOwner.has(def.port)) {
      add(key, 'port', `${def.port} is already used by service "${portOwner.get(def.port)}"`);
    } else {
      portOwner.set(def.port, key);
    }
    if (def.database !== '') {
      if (def.database !== snakeCase(key)) {
        add(key, 'database', `"${def.database}" must be the snake_case of the key, "${snakeCase(key)}" (or "" for a stateless service)`);
      }
      if (databaseOwner.has(def.database)) {
        add(key, 'database', `"${def.database}" is already used by service "${databaseOwner.get(def.database)}"`);
      } else {
        databaseOwner.set(def.database, key);
      }
    }
    for (const dep of def.dependsOn ?? []) {
      if (!(dep in definitions)) add(key, 'dependsOn', `names "${dep}", which is not a service (known: ${keys.join(', ')})`);
      if (dep === key) add(key, 'dependsOn', 'a service cannot depend on itself');
    }
    for (const peer of def.calls ?? []) {
      if (!(peer in definitions)) add(key, 'calls', `names "${peer}", which is not a service (known: ${keys.join(', ')})`);
      if (peer === key) add(key, 'calls', 'a service does not call itself over HTTP');
      if (def.dependsOn?.includes(peer)) add(key, 'calls', `"${peer}" is already in dependsOn`);
    }
    for (const route of def.routes) {
      const prefix = route.prefix;
      if (!prefix.startsWith('/') || prefix.endsWith('/')) add(key, 'routes', `"${prefix}" must start with "/" and have no trailing slash`);
      const owner = prefixOwner.get(prefix);
      if (owner !== undefined) add(key, 'routes', `"${prefix}" is declared twice${owner === key ? '' : ` (also by service "${owner}")`}`);
      else prefixOwner.set(prefix, key);
    }
    for (const permission of def.permissions ?? []) {
      if (!PERMISSION.test(permission)) add(key, 'permissions', `"${permission}" must be "<resource>:read" or "<resource>:write", the resource in kebab-case`);
      const owner = permissionOwner.get(permission);
      if (owner !== undefined) add(key, 'permissions', `"${permission}" is declared twice${owner === key ? '' : ` (also by service "${owner}")`}`);
      else permissionOwner.set(permission, key);
    }
    const resources = new Set((def.permissions ?? []).map((permission) => permission.split(':')[0]));
    for (const resource of def.departmentScoped ?? []) {
      if (!resources.has(resource)) add(key, 'departmentScoped', `"${resource}" is not a resource of this service's permissions (${[...resources].join(', ') || 'none'})`);
    }
    if (def.semiSpaceMb !== undefined && (!Number.isInteger(def.semiSpaceMb) || def.semiSpaceMb < 1 || def.semiSpaceMb > 64)) add(key, 'semiSpaceMb', `${def.semiSpaceMb} must be a whole number of MB from 1 to 64`);
    if (def.replicas !== undefined && (!Number.isInteger(def.replicas) || def.replicas < 1 || def.replicas > 16)) add(key, 'replicas', `${def.replicas} must be a whole number from 1 to 16`);
    if (def.edge && def.routes.length > 0) add(key, 'routes', 'the edge routes the other services\' routes and declares none of its own');
    for (const [type, schema] of Object.entries(def.events?.publishes ?? {})) {
      if (!EVENT_TYPE.test(type)) add(key, 'events.publishes', `"${type}" must be "<entity>.<what happened>" in kebab-case, e.g. "order.status-changed"`);
      if (!payloadProperties(schema)) add(key, 'events.publishes', `the payload schema of "${type}" must be a TypeBox object (Type.Object)`);
    }
    const names = new Set<string>();
    for (const sub of subscriptionsOf(key, def, definitions)) {
      if (names.has(sub.name)) add(key, 'events.consumes', `consumer name "${sub.name}" is used twice${sub.for === 'handler' ? '' : ' (the platform names its own subscriptions <service>.lookups.<producer> and <service>.<identity>-changes)'}`);
      names.add(sub.name);
      if (sub.for !== 'handler') continue;
      if (!JOB_NAME.test(sub.name) || !sub.name.startsWith(`${key}.`)) add(key, 'events.consumes', `consumer name "${sub.name}" must be "${key}.<what>" in lowercase words joined by dots`);
      if ((sub.mode as string) !== 'group' && (sub.mode as string) !== 'broadcast') {
        add(key, 'events.consumes', `mode of the subscription to "${sub.from}" must be "group" or "broadcast", not ${JSON.stringify(sub.mode)}`);
      }
      const producer = definitions[sub.from];
      if (!producer) {
        add(key, 'events.consumes', `reads from "${sub.from}", which is not a service`);
        continue;
      }
      // Its feed is read over HTTP, from the peer's URL.
      if (![...(def.dependsOn ?? []), ...(def.calls ?? [])].includes(sub.from)) add(key, 'events.consumes', `${sub.name} reads from "${sub.from}", which is in neither dependsOn nor calls`);
      const published = Object.keys(producer.events?.publishes ?? {});
      if (sub.types.length === 0) add(key, 'events.consumes', `${sub.name} names no event types`);
      for (const type of sub.types) {
        if (!published.some((p) => typeMatches(type, p))) add(key, 'events.consumes', `"${type}" is not published by "${sub.from}"`);
      }
    }
    if (def.identity) {
      const published = Object.keys(def.events?.publishes ?? {});
      const missing = IDENTITY_CHANGES.filter((type) => !published.includes(type));
      if (missing.length > 0) add(key, 'identity', `the identity provider must publish ${missing.join(', ')} (every service that verifies tokens follows them)`);
    }
    for (const lookup of def.lookups ?? []) {
      const producer = definitions[lookup.from];
      if (!producer) {
        add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", which is not a service`);
      } else if (producer.database === '') {
        add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", which has no database`);
      } else {
        // Its events and its export are read over HTTP, from the peer's URL.
        if (![...(def.dependsOn ?? []), ...(def.calls ?? [])].includes(lookup.from)) add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", which is in neither dependsOn nor calls`);
        // Events are applied by their aggregate id, export rows by the key: they must be one field,
        // unless keyFrom names the field both carry.
        const aggregateId = producer.events?.aggregateIds?.[lookup.entity];
        if (lookup.keyFrom === undefined && aggregateId === undefined) {
          add(key, 'lookups', `${lookup.table} copies "${lookup.entity}", but "${lookup.from}" does not declare its aggregate id (events.aggregateIds)`);
        } else if (lookup.keyFrom === undefined && aggregateId !== lookup.key) {
          add(key, 'lookups', `${lookup.table} is keyed by "${lookup.key}", but "${lookup.from}"'s ${lookup.entity} events carry "${aggregateId}" as their aggregate id; key it by "${aggregateId}" or map it (keyFrom)`);
        }
        const payloads = Object.entries(producer.events?.publishes ?? {}).filter(([type]) => type.startsWith(`${lookup.entity}.`) && type !== `${lookup.entity}.deleted`);
        if (payloads.length === 0) {
          add(key, 'lookups', `${lookup.table} copies "${lookup.entity}", of which "${lookup.from}" publishes no events`);
        }
        for (const [type, schema] of payloads) {
          const carried = payloadProperties(schema) ?? [];
          const absent = [lookupSourceKey(lookup), ...Object.keys(lookup.columns)].filter((column) => !carried.includes(column));
          if (absent.length > 0) add(key, 'lookups', `${lookup.table} copies ${absent.map((c) => `"${c}"`).join(', ')}, which "${lookup.from}"'s ${type} payload does not carry`);
        }
      }
      if (!lookup.table.endsWith('_lookup') || !COLUMN.test(lookup.table)) add(key, 'lookups', `table "${lookup.table}" must be snake_case and end with "_lookup"`);
      for (const [column, type] of [[lookup.key, lookup.keyType ?? 'text'], ...Object.entries(lookup.columns)] as const) {
        if (!COLUMN.test(column) || ['master_id', 'source_version', 'synced_at'].includes(column)) add(key, 'lookups', `${lookup.table}: "${column}" is not a column name it may declare`);
        if (!LOOKUP_COLUMN_TYPES.includes(type)) add(key, 'lookups', `${lookup.table}.${column} has type ${JSON.stringify(type)}; a lookup column is one of ${LOOKUP_COLUMN_TYPES.join(', ')}`);
      }
      if (lookup.key in lookup.columns) add(key, 'lookups', `${lookup.table} declares its key "${lookup.key}" among its columns`);
    }
    const jobNames = new Set<string>();
    for (const job of def.jobs ?? []) {
      if (!JOB_NAME.test(job.name)) add(key, 'jobs', `name "${job.name}" must be lowercase words joined by dots, e.g. "outbox.prune"`);
      if (jobNames.has(job.name)) add(key, 'jobs', `"${job.name}" is declared twice`);
      jobNames.add(job.name);
      if (!isCronExpression(job.schedule)) add(key, 'jobs', `schedule of "${job.name}", "${job.schedule}", is not a cron expression (5 fields, or 6 with seconds first)`);
      if (job.scheduleVariable !== undefined && !VARIABLE.test(job.scheduleVariable)) {
        add(key, 'jobs', `scheduleVariable of "${job.name}", "${job.scheduleVariable}", must be an UPPER_SNAKE_CASE variable name`);
      }
      if (job.description.trim() === '') add(key, 'jobs', `"${job.name}" needs a description`);
    }
    if (def.database === '' && (def.lookups?.length || def.reporting?.publishes.length || def.jobs?.length)) {
      add(key, 'database', 'a stateless service cannot keep lookup tables, run jobs or publish tables to reporting');
    }
  }
  // A route nested in another service's prefix would be taken from it (the longest prefix wins):
  // a public route, say, must belong to the service that owns the path.
  for (const [key, def] of Object.entries(definitions)) {
    for (const route of def.routes) {
      for (const [other, prefix] of [...prefixOwner.entries()].map(([p, o]) => [o, p] as const)) {
        if (other !== key && route.prefix.startsWith(`${prefix}/`)) {
          add(key, 'routes', `${route.public ? 'public ' : ''}route "${route.prefix}" lies under "${prefix}", which belongs to service "${other}"`);
        }
      }
    }
  }
  const identities = Object.keys(definitions).filter((key) => definitions[key]!.identity);
  if (identities.length > 1) add(identities[1]!, 'identity', `only one service can be the identity provider (also: ${identities[0]})`);
  const edges = Object.keys(definitions).filter((key) => definitions[key]!.edge);
  if (edges.length > 1) add(edges[1]!, 'edge', `only one service can be the edge (also: ${edges[0]})`);
  const cycle = findCycle(definitions);
  if (cycle) add(cycle[0]!, 'dependsOn', `dependency cycle: ${cycle.join(' → ')}`);
  return issues;
}

function findCycle(definitions: Readonly<Record<string, ServiceDefinition>>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (key: string, path: string[]): string[] | undefined => {
    if (state.get(key) === 'done') return undefined;
    if (state.get(key) === 'visiting') return [...path.slice(path.indexOf(key)), key];
    state.set(key, 'visiting');
    for (const dep of definitions[key]?.dependsOn ?? []) {
      if (!(dep in definitions)) continue;
      const cycle = visit(dep, [...path, key]);
      if (cycle) return cycle;
    }
    state.set(key, 'done');
    return undefined;
  };
  for (const key of Object.keys(definitions)) {
    const cycle = visit(key, []);
    if (cycle) return cycle;
  }
  return undefined;
}

// The edge calls every service with routes that it does not already start after.
function edgeCalls(definitions: Readonly<Record<string, ServiceDefinition>>, edge: string): string[] {
  const def = definitions[edge]!;
  const routed = Object.keys(definitions).filter((key) => key !== edge && definitions[key]!.routes.length > 0 && !def.dependsOn?.includes(key));
  return [...new Set([...(def.calls ?? []), ...routed])];
}

function dependencyOrder(definitions: Readonly<Record<string, ServiceDefinition>>): string[] {
  const order: string[] = [];
  const visit = (key: string) => {
    if (order.includes(key)) return;
    for (const dep of definitions[key]?.dependsOn ?? []) visit(dep);
    order.push(key);
  };
  for (const key of Object.keys(definitions)) visit(key);
  return order;
}

/**
 * Validates the registry and applies `<KEY>_PORT` overrides from the environment.
 *
 * @example
 * const registry = loadRegistry();
 * registry.service('core').port; // 4104, or CORE_PORT when set
 */
export function loadRegistry(
  definitions: Readonly<Record<string, ServiceDefinition>> = serviceDefinitions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Registry {
  const overridden: Record<string, ServiceDefinition> = {};
  const envIssues: RegistryIssue[] = [];
  for (const [key, def] of Object.entries(definitions)) {
    const variable = `${envPrefix(key)}_PORT`;
    const raw = env[variable];
    const port = Number(raw);
    if (raw === undefined || raw === '') {
      overridden[key] = def;
    } else if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
      envIssues.push({ service: key, field: 'port', message: `environment variable ${variable}="${raw}" is not a TCP port (1–65535)` });
      overridden[key] = def;
    } else {
      overridden[key] = { ...def, port };
    }
  }
  const issues = [...envIssues, ...validateRegistry(overridden)];
  if (issues.length > 0) throw new RegistryError(issues);

  const services: Service[] = dependencyOrder(overridden).map((key) => {
    const def = overridden[key]!;
    const subscriptions = subscriptionsOf(key, def, overridden);
    return { ...def, key, stateful: def.database !== '', subscriptions, uses: usesOf(def, subscriptions), ...(def.edge ? { calls: edgeCalls(overridden, key) } : {}) };
  });
  const byKey = new Map(services.map((s) => [s.key, s]));
  return {
    services,
    service(key: string): Service {
      const found = byKey.get(key);
      if (!found) throw new RegistryError([{ service: key, field: 'key', message: `no such service (known: ${[...byKey.keys()].join(', ')})` }]);
      return found;
    },
  };
}
