import Type, { type Static, type TObject, type TSchema } from 'typebox';
import { envPrefix, type BackingService, type Service } from '@archipelago/registry';
import Value from 'typebox/value';
import { redactUrl } from './db.ts';

/** Thrown when the environment does not satisfy a config schema; names each variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n') +
        '\nSet these environment variables (see .env.example) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates environment variables against a TypeBox schema. Numbers and booleans
 * are converted from strings; defaults apply; every problem names its variable.
 *
 * @example
 * const config = loadConfig(Type.Object({ PORT: Type.Integer({ default: 3000 }) }));
 */
export function loadConfig<T extends TObject>(schema: T, env: Readonly<Record<string, string | undefined>> = process.env): Static<T> {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const converted = Value.Convert(schema, Value.Default(schema, picked)) as Record<string, unknown>;
  // Checked one variable at a time: TypeBox stops reporting after some failures (a union's), and
  // every wrong variable must be named at once.
  const required = new Set(schema.required ?? []);
  const problems = Object.entries(schema.properties).flatMap(([variable, property]) => {
    const value = converted[variable];
    if (value === undefined) return required.has(variable) ? [{ variable, message: 'is required' }] : [];
    const [first] = Value.Errors(property, value);
    return first ? [{ variable, message: `${first.message} (got ${shown(variable, env[variable])})` }] : [];
  });
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  return converted as Static<T>;
}

// Values of secret-bearing variables are never echoed: URLs lose their password, secrets are hidden.
function shown(variable: string, value: string | undefined): string {
  if (value === undefined) return 'nothing';
  if (/PASSWORD|SECRET|TOKEN|KEY/.test(variable)) return 'a value (hidden)';
  if (/_URL$/.test(variable)) return `"${redactUrl(value)}"`;
  return `"${value}"`;
}

function dedupe<T extends { variable: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(i.variable) && seen.add(i.variable));
}

/**
 * Marks a variable the launcher sets itself (`npm start`, the compose files): HOST, PORT, DATABASE_URL,
 * peer URLs, credentials. It is not inherited from the operator's environment nor listed in .env.example.
 */
export const DERIVED = 'x-derived';
/** The value a compose file gives a backing service's variable (its container on the compose network). */
export const COMPOSE_VALUE = 'x-compose';

/** The variables every service reads. */
export const platformConfigSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1', description: 'address to listen on', [DERIVED]: true }),
  PORT: Type.Integer({ minimum: 1, maximum: 65535, description: 'port to listen on (<KEY>_PORT under npm start)', [DERIVED]: true }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' },
  ),
  SERVICE_PRIVATE_KEY: Type.Optional(Type.String({ description: "this service's own Ed25519 key (from <KEY>_SERVICE_PRIVATE_KEY)", [DERIVED]: true })),
  SERVICE_PUBLIC_KEYS: Type.Optional(Type.String({ description: "every principal's public key, JSON", [DERIVED]: true })),
});

/** The variables every service that owns a database reads. */
export const databaseConfigSchema = Type.Object({
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', description: "the service's app role on its database (<KEY>_DATABASE_URL)", [DERIVED]: true }),
  DATABASE_CONNECT_ATTEMPTS: Type.Integer({ minimum: 1, default: 8, description: 'tries to reach the database at start-up before giving up' }),
});

/** What each backing service a service `uses` brings, declared once. */
export const backingConfigSchemas = {
  redis: Type.Object({
    REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis; unset: the in-memory fallback', examples: ['redis://localhost:6379'], [COMPOSE_VALUE]: 'redis://redis:6379' })),
  }),
  rabbitmq: Type.Object({
    EVENT_TRANSPORT: Type.Union([Type.Literal('feed'), Type.Literal('rabbitmq')], { default: 'feed', description: 'how events travel: the outbox feed or RabbitMQ', [COMPOSE_VALUE]: 'rabbitmq' }),
    RABBITMQ_URL: Type.Optional(Type.String({
      pattern: '^amqps?://', description: 'RabbitMQ, with EVENT_TRANSPORT=rabbitmq', examples: ['amqp://archipelago:change-me@localhost:5672'],
      [COMPOSE_VALUE]: 'amqp://archipelago:${RABBITMQ_PASSWORD:?set RABBITMQ_PASSWORD in .env}@rabbitmq:5672',
    })),
  }),
  objectStorage: Type.Object({
    OBJECT_STORAGE_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'S3-compatible object storage endpoint; unset: a directory under .data/', examples: ['http://localhost:9000'] })),
    OBJECT_STORAGE_REGION: Type.String({ minLength: 1, default: 'us-east-1', description: 'region of the S3-compatible store' }),
    OBJECT_STORAGE_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1, description: 'access key of the S3-compatible store; unset: the AWS SDK\'s default chain', examples: ['archipelago'] })),
    OBJECT_STORAGE_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1, description: 'secret key of the S3-compatible store (never logged)', examples: ['change-me'] })),
  }),
  mail: Type.Object({
    SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://', description: 'mail through SMTP (smtps:// for TLS); unset: the local mailbox', examples: ['smtp://user:pass@mail.example.com:587'] })),
    MAIL_FROM: Type.String({ minLength: 3, default: 'Archipelago <no-reply@localhost>', description: 'sender of every mail' }),
    MAIL_DIR: Type.Optional(Type.String({ minLength: 1, description: 'the local mailbox (0700, one 0600 file per message): npm run cli -- mail list', examples: ['.data/mail'] })),
  }),
} satisfies Record<BackingService, TObject>;

/** The variable holding a peer's base URL: `<KEY>_URL`. */
export function peerUrlVariable(key: string): string {
  return `${envPrefix(key)}_URL`;
}

/** Every peer a service reaches over HTTP: its `dependsOn` and its `calls`. */
export function peersOf(service: Service): string[] {
  return [...(service.dependsOn ?? []), ...(service.calls ?? [])];
}

/**
 * Everything a service reads from its environment, derived from its declaration: the platform's
 * variables, its database's, its peers' URLs, its backing services', its jobs' schedule variables
 * and its own `config`. `runService` validates the environment against it; the CLI passes exactly
 * these variables to the process; .env.example and the compose files list them.
 */
export function serviceConfigSchemaOf(service: Service): TObject {
  const properties: Record<string, TSchema> = { ...platformConfigSchema.properties };
  if (service.stateful) Object.assign(properties, databaseConfigSchema.properties);
  for (const peer of peersOf(service)) {
    properties[peerUrlVariable(peer)] = Type.String({ pattern: '^https?://', description: `base URL of ${peer}`, [DERIVED]: true });
  }
  for (const backing of service.uses ?? []) Object.assign(properties, backingConfigSchemas[backing].properties);
  for (const job of service.jobs ?? []) {
    if (job.scheduleVariable) {
      properties[job.scheduleVariable] = Type.Optional(Type.String({ description: `replaces the schedule of ${job.name} ("${job.schedule}"): a cron expression, HH:MM (daily, UTC) or off` }));
    }
  }
  for (const [variable, schema] of Object.entries(service.config?.properties ?? {})) {
    // A service's own variable must not shadow one the platform derives or shares.
    if (variable in properties) throw new Error(`registry: ${service.key}'s config declares ${variable}, which the platform already defines for it`);
    properties[variable] = schema;
  }
  return Type.Object(properties);
}

/** Whether a schema's variable is set by the launcher rather than the operator (see DERIVED). */
export function isDerived(schema: TSchema): boolean {
  return (schema as Record<string, unknown>)[DERIVED] === true;
}

/** The variables every service reads (a stateful one: see databaseConfigSchema too). */
export const serviceConfigSchema = Type.Object({
  ...platformConfigSchema.properties,
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_CONNECT_ATTEMPTS: databaseConfigSchema.properties.DATABASE_CONNECT_ATTEMPTS,
});
export type ServiceConfig = Static<typeof serviceConfigSchema>;
