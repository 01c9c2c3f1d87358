import { snakeCase, validateRegistry, type LookupDefinition, type ServiceDefinition } from '@archipelago/registry';

/** A lookup the new service keeps, with the SQL type of each copied column (its migration's). */
export interface ScaffoldLookup extends LookupDefinition {
  readonly columnTypes: Readonly<Record<string, string>>;
}

/** What `new service` builds: the registry entry and the files both follow from it. */
export interface ScaffoldSpec {
  readonly key: string;
  /** The resource of its guarded route: `/api/v1/<resource>`, permission `<resource>:read`. */
  readonly resource: string;
  /** Sources and event types the service's own consumers record (group subscriptions). */
  readonly consumes: readonly { readonly from: string; readonly types: readonly string[] }[];
  readonly lookups: readonly ScaffoldLookup[];
  readonly definition: ServiceDefinition;
}

/** The command line's description of a new service, before it is checked against the registry. */
export interface ScaffoldRequest {
  readonly key: string;
  readonly resource?: string;
  readonly label?: string;
  /** `<source>:<type>[,<type>…]`, e.g. `core:order.created`. */
  readonly consumes?: readonly string[];
  /** `<source>:<entity>:<column>[=<sql type>][,…]`, e.g. `masterdata:department:name,is_active`. */
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

function parseLookup(option: string, definitions: Readonly<Record<string, ServiceDefinition>>): ScaffoldLookup {
  const [from, entity, columns, ...rest] = option.split(':');
  if (!from || !entity || !columns || rest.length > 0) {
    throw new ScaffoldError(`--lookup "${option}" must be <source>:<entity>:<column>[=<sql type>][,…], e.g. masterdata:department:name,is_active`);
  }
  const columnTypes: Record<string, string> = {};
  for (const column of columns.split(',').filter(Boolean)) {
    const [name = '', type] = column.split('=');
    if (!COLUMN.test(name)) throw new ScaffoldError(`--lookup "${option}": "${name}" is not a column name`);
    // Booleans by their conventional name; anything else text unless a type is given.
    columnTypes[name] = type ?? (name.startsWith('is_') ? 'boolean' : 'text');
  }
  const key = definitions[from]?.events?.aggregateIds?.[entity];
  // An unknown key is left for the registry's validation to name.
  return { table: lookupTable(entity), from, entity, key: key ?? 'code', columns: Object.keys(columnTypes), columnTypes };
}

/**
 * Turns a request into a new service's registry entry: a free port, its database, one guarded
 * route and its permission, IAM as its dependency, the sources it reads as `calls`, a group
 * subscription per source (lookups' entities included) and, with lookups, their daily
 * reconciliation. Throws a ScaffoldError naming every problem the registry finds.
 */
export function scaffoldSpec(request: ScaffoldRequest, definitions: Readonly<Record<string, ServiceDefinition>>): ScaffoldSpec {
  const { key } = request;
  if (key in definitions) throw new ScaffoldError(`service "${key}" is already in the registry`);
  const resource = request.resource ?? key;
  // A malformed key is the registry's to name; a resource must also suit permissionOf's convention.
  if ((request.resource !== undefined || KEY.test(key)) && !RESOURCE.test(resource)) throw new ScaffoldError(`--resource "${resource}" must be lowercase words joined by dashes (it names /api/v1/${resource} and ${resource}:read)`);
  const consumes = (request.consumes ?? []).map(parseConsumes);
  const lookups = (request.lookups ?? []).map((option) => parseLookup(option, definitions));

  const subscriptions = new Map<string, Set<string>>();
  const subscribe = (from: string, types: readonly string[]) => {
    const set = subscriptions.get(from) ?? new Set<string>();
    for (const type of types) set.add(type);
    subscriptions.set(from, set);
  };
  for (const c of consumes) subscribe(c.from, c.types);
  for (const l of lookups) subscribe(l.from, [`${l.entity}.*`]);
  const sources = [...subscriptions.keys()];

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
    ...(sources.length > 0 ? { events: { consumes: sources.map((from) => ({ from, mode: 'group' as const, types: [...subscriptions.get(from)!] })) } } : {}),
    ...(lookups.length > 0
      ? {
          lookups: lookups.map(({ table, from, entity, key: lookupKey, columns }) => ({ table, from, entity, key: lookupKey, columns })),
          jobs: [{ name: 'lookups.reconcile', schedule: '0 2 * * *', scheduleVariable: 'LOOKUP_RECONCILE_AT', description: 'repair every lookup table from its master\'s export' }],
        }
      : {}),
  };
  const issues = validateRegistry({ ...definitions, [key]: definition });
  if (issues.length > 0) {
    throw new ScaffoldError(`the registry would refuse "${key}":\n${issues.map((i) => `  - service "${i.service}", field "${i.field}": ${i.message}`).join('\n')}`);
  }
  return { key, resource, consumes, lookups, definition };
}
