import Type, { type Static, type TObject } from 'typebox';
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
  const converted = Value.Convert(schema, Value.Default(schema, picked));
  const problems = Value.Errors(schema, converted).flatMap((e) => {
    if (e.keyword === 'required') {
      const missing = (e.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      return missing.map((variable) => ({ variable, message: 'is required' }));
    }
    const variable = e.instancePath.replace(/^\//, '').split('/')[0] ?? '';
    return [{ variable, message: `${e.message} (got ${shown(variable, env[variable])})` }];
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

/** The variables every service reads. */
export const serviceConfigSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 1, maximum: 65535 }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  DATABASE_CONNECT_ATTEMPTS: Type.Integer({ minimum: 1, default: 8 }),
});
export type ServiceConfig = Static<typeof serviceConfigSchema>;
