import type { ServiceDefinition } from '@archipelago/registry';

/** Where the registry's declarations end; a new entry goes just before it. */
export const REGISTRY_END = '} as const satisfies Record<string, ServiceDefinition>;';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

// A value as TypeScript source in the registry's style: single quotes, short arrays on one line.
function source(value: unknown, indent: string): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const items = value.map((item) => source(item, inner));
    const flat = `[${items.join(', ')}]`;
    return flat.length + indent.length <= 160 && !flat.includes('\n') ? flat : `[\n${items.map((i) => `${inner}${i},`).join('\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${IDENTIFIER.test(k) ? k : source(k, inner)}: ${source(v, inner)}`);
  const flat = `{ ${entries.join(', ')} }`;
  if (indent.length > 2 && flat.length + indent.length <= 160 && !flat.includes('\n')) return flat;
  return `{\n${entries.map((e) => `${inner}${e},`).join('\n')}\n${indent}}`;
}

/** The new service's entry as it is written into registry/src/services.ts. */
export function registryEntry(key: string, definition: ServiceDefinition): string {
  const name = IDENTIFIER.test(key) ? key : `'${key}'`;
  return `  // Added by \`npm run cli -- new service ${key}\`.\n  ${name}: ${source(definition, '  ')},\n`;
}

/** registry/src/services.ts with the entry added at the end of the declarations. */
export function withEntry(registrySource: string, entry: string): string {
  const at = registrySource.lastIndexOf(REGISTRY_END);
  if (at < 0) throw new Error(`registry/src/services.ts no longer ends its declarations with "${REGISTRY_END}"; add the entry by hand:\n${entry}`);
  return `${registrySource.slice(0, at)}${entry}${registrySource.slice(at)}`;
}
