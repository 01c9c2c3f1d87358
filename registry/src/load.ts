import { Cron } from 'croner';
import { serviceDefinitions } from './services.ts';
import type { Registry, Service, ServiceDefinition } from './types.ts';

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
    if (def.replicas !== undefined && (!Number.isInteger(def.replicas) || def.replicas < 1 || def.replicas > 16)) add(key, 'replicas', `${def.replicas} must be a whole number from 1 to 16`);
    if (def.edge && def.routes.length > 0) add(key, 'routes', 'the edge routes the other services\' routes and declares none of its own');
    const consumptions = new Set<string>();
    for (const sub of def.events?.consumes ?? []) {
      if ((sub.mode as string) !== 'group' && (sub.mode as string) !== 'broadcast') {
        add(key, 'events.consumes', `mode of the subscription to "${sub.from}" must be "group" or "broadcast", not ${JSON.stringify(sub.mode)}`);
      }
      if (consumptions.has(`${sub.from} ${sub.mode}`)) add(key, 'events.consumes', `subscribes to "${sub.from}" twice as a ${sub.mode}; merge the two`);
      consumptions.add(`${sub.from} ${sub.mode}`);
      const producer = definitions[sub.from];
      if (!producer) {
        add(key, 'events.consumes', `reads from "${sub.from}", which is not a service`);
        continue;
      }
      const published = producer.events?.publishes ?? [];
      for (const type of sub.types) {
        const matches = type.endsWith('.*')
          ? published.some((p) => p.startsWith(type.slice(0, -1)))
          : published.includes(type);
        if (!matches) add(key, 'events.consumes', `"${type}" is not published by "${sub.from}"`);
      }
    }
    for (const lookup of def.lookups ?? []) {
      const producer = definitions[lookup.from];
      if (!producer) {
        add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", which is not a service`);
      } else if (producer.database === '') {
        add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", which has no database`);
      } else {
        // Events are applied by their aggregate id, export rows by the key: they must be one column.
        const aggregateId = producer.events?.aggregateIds?.[lookup.entity];
        if (aggregateId === undefined) {
          add(key, 'lookups', `${lookup.table} copies "${lookup.entity}", but "${lookup.from}" does not declare its aggregate id (events.aggregateIds)`);
        } else if (aggregateId !== lookup.key) {
          add(key, 'lookups', `${lookup.table} is keyed by "${lookup.key}", but "${lookup.from}"'s ${lookup.entity} events carry "${aggregateId}" as their aggregate id`);
        }
        if (!(producer.events?.publishes ?? []).some((type) => type.startsWith(`${lookup.entity}.`))) {
          add(key, 'lookups', `${lookup.table} copies "${lookup.entity}", of which "${lookup.from}" publishes no events`);
        }
      }
      if (!lookup.table.endsWith('_lookup')) add(key, 'lookups', `table "${lookup.table}" must end with "_lookup"`);
      // A lookup table is written in the service's database: one instance applies each event.
      if (!(def.events?.consumes ?? []).some((sub) => sub.from === lookup.from && sub.mode === 'group')) {
        add(key, 'lookups', `${lookup.table} copies from "${lookup.from}", so events.consumes needs a "group" subscription to "${lookup.from}"`);
      }
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
    return { ...def, key, stateful: def.database !== '', ...(def.edge ? { calls: edgeCalls(overridden, key) } : {}) };
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
