import type { TObject, TSchema } from 'typebox';
import { LOOKUP_COLUMN_TYPES, snakeCase, validateRegistry, type EventSubscription, type LookupColumnType, type LookupDefinition, type ServiceDefinition } from '@archipelago/registry';

/** What `new service` builds: the registry entry and the files both follow from it. */
export interface ScaffoldSpec {
  readonly key: string;
  /** The resource of its guarded route: `/api/v1/<resource>`, permission `<resource>:read`. */
  readonly resource: string;
  /** The service's own consumers (group subscriptions named `<key>.<source>`), whose handlers record events. */
  readonly consumes: readonly EventSubscription[];
  readonly lookups: readonly LookupDefinition[];
  readonly definition: ServiceDefinition;
  /** The payload schema a source declares for an event type (for the test's sample event). */
  readonly publishedBy: (source: string, type: string) => TObject | undefined;
}

/** The command line's description of a new service, before it is checked against the registry. */
export interface ScaffoldRequest {
  readonly key: string;
  readonly resource?: string;
  readonly label?: string;
  /** `<source>:<type>[,<type>…]`, e.g. `core:order.created`. */
  readonly consumes?: readonly string[];
  /** `<source>:<entity>:<column>[=<type>][,…]`, e.g. `masterdata:department:name,is_active`. */
  readonly lookups?: readonly string[];
}

/** A request the registry would refuse, or that cannot be read; names the option. */
export class ScaffoldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScaffoldError';
  }
}

const FIRST_PORT = 4100;
const KEY = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const RESOURCE = /^[a-z][a-z-]*[a-z]$/;
const COLUMN = /^[a-z_][a-z0-9_]*$/;

// The lowest port from 4100 up that no service of the registry takes.
function freePortIn(definitions: Readonly<Record<string, ServiceDefinition>>): number {
  const taken = new Set(Object.values(definitions).map((d) => d.port));
  let port = FIRST_PORT;
  while (taken.has(port)) port++;
  return port;
}

// `department` → `departments_lookup`, `classification-code` → `classification_codes_lookup`.
function lookupTable(entity: string): string {
  const plural = /[^aeiou]y$/.test(entity) ? `${entity.slice(0, -1)}ies` : /(s|x|ch|sh)$/.test(entity) ? `${entity}es` : `${entity}s`;
  return `${snakeCase(plural)}_lookup`;
}

function parseConsumes(option: string): { from: string; types: string[] } {
  const [from, types] = option.split(':');
  if (!from || !types) throw new ScaffoldError(`--consumes "${option}" must be <source>:<type>[,<type>…], e.g. core:order.created`);
  return { from, types: types.split(',').filter(Boolean) };
}

// A payload field's lookup column type, as its producer's schema declares it.
function columnTypeOf(schema: TSchema | undefined): LookupColumnType {
  const { type, format } = (schema ?? {}) as { type?: unknown; format?: unknown };
  if (type === 'integer' || type === 'boolean') return type;
  return type === 'string' && format === 'uuid' ? 'uuid' : 'text';
}

function parseLookup(option: string, definitions: Readonly<Record<string, ServiceDefinition>>): LookupDefinition {
  const [from, entity, columns, ...rest] = option.split(':');
  if (!from || !entity || !columns || rest.length > 0) {
    throw new ScaffoldError(`--lookup "${option}" must be <source>:<entity>:<column>[=<type>][,…], e.g. masterdata:department:name,is_active`);
  }
  const producer = definitions[from];
  const payload = producer?.events?.publishes?.[`${entity}.created`]?.properties ?? {};
  const typed: Record<string, LookupColumnType> = {};
  for (const column of columns.split(',').filter(Boolean)) {
    const [name = '', type] = column.split('=');
    if (!COLUMN.test(name)) throw new ScaffoldError(`--lookup "${option}": "${name}" is not a column name`);
    if (type !== undefined && !LOOKUP_COLUMN_TYPES.includes(type as LookupColumnType)) {
      throw new ScaffoldError(`--lookup "${option}": "${type}" is not a lookup column type (${LOOKUP_COLUMN_TYPES.join(', ')})`);
    }
    // Typed as the producer's payload schema declares the field, unless told.
    typed[name] = (type as LookupColumnType | undefined) ?? columnTypeOf(payload[name]);
  }
  // An entity without a declared aggregate id is left for the registry's validation to name.
  const key = producer?.events?.aggregateIds?.[entity] ?? 'code';
  const keyType = columnTypeOf(payload[key]);
  return { table: lookupTable(entity), from, entity, key, ...(keyType === 'text' ? {} : { keyType }), columns: typed };
}

/**
 * Turns a request into a new service's registry entry: a free port, its database, one guarded
 * route and its permission, IAM as its dependency, the sources it reads as `calls`, a named group
 * consumer per source it records and, with lookups (typed from the producer's payload schema),
 * their daily reconciliation. Throws a ScaffoldError naming every problem the registry finds.
 */
export function scaffoldSpec(request: ScaffoldRequest, definitions: Readonly<Record<string, ServiceDefinition>>): ScaffoldSpec {
  const { key } = request;
  if (key in definitions) throw new ScaffoldError(`service "${key}" is already in the registry`);
  const resource = request.resource ?? key;
  // A malformed key is the registry's to name; a resource must also suit permissionOf's convention.
  if ((request.resource !== undefined || KEY.test(key)) && !RESOURCE.test(resource)) throw new ScaffoldError(`--resource "${resource}" must be lowercase words joined by dashes (it names /api/v1/${resource} and ${resource}:read)`);
  const consumes = (request.consumes ?? []).map(parseConsumes);
  const lookups = (request.lookups ?? []).map((option) => parseLookup(option, definitions));

  // One consumer per source, its types merged; the lookups' subscriptions are the platform's.
  const bySource = new Map<string, string[]>();
  for (const c of consumes) bySource.set(c.from, [...new Set([...(bySource.get(c.from) ?? []), ...c.types])]);
  const subscriptions: EventSubscription[] = [...bySource].map(([from, types]) => ({ name: `${key}.${from}`, from, mode: 'group', types }));
  const sources = [...new Set([...bySource.keys(), ...lookups.map((l) => l.from)])];

  const definition: ServiceDefinition = {
    hostname: key,
    port: freePortIn(definitions),
    database: snakeCase(key),
    layer: 'domain',
    label: request.label ?? key.split('-').map((w, i) => (i === 0 ? w[0]!.toUpperCase() + w.slice(1) : w)).join(' '),
    routes: [{ prefix: `/api/v1/${resource}` }],
    // Tokens are verified against IAM; the sources are called (feeds, exports) and may start later.
    dependsOn: ['iam'],
    ...(sources.filter((s) => s !== 'iam').length > 0 ? { calls: sources.filter((s) => s !== 'iam') } : {}),
    permissions: [`${resource}:read`],
    ...(subscriptions.length > 0 ? { events: { consumes: subscriptions } } : {}),
    ...(lookups.length > 0
      ? {
          lookups,
          jobs: [{ name: 'lookups.reconcile', schedule: '0 2 * * *', scheduleVariable: 'LOOKUP_RECONCILE_AT', description: 'repair every lookup table from its master\'s export' }],
        }
      : {}),
  };
  const issues = validateRegistry({ ...definitions, [key]: definition });
  if (issues.length > 0) {
    throw new ScaffoldError(`the registry would refuse "${key}":\n${issues.map((i) => `  - service "${i.service}", field "${i.field}": ${i.message}`).join('\n')}`);
  }
  const publishedBy = (source: string, type: string) => definitions[source]?.events?.publishes?.[type];
  return { key, resource, consumes: subscriptions, lookups, definition, publishedBy };
}
