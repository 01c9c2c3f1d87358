import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { serviceDefinitions, type ServiceDefinition } from '@archipelago/registry';
import { repositoryRoot } from '@archipelago/platform/layout';
import { registryEntry, withEntry } from '../scaffold/registry-entry.ts';
import { scaffoldSpec, ScaffoldError, type ScaffoldRequest } from '../scaffold/spec.ts';
import { serviceFiles } from '../scaffold/template.ts';

/**
 * `archipelago new service <key> [--consumes …] [--lookup …] [--resource …]`: writes
 * services/<key>/ from the template and adds its entry to registry/src/services.ts; nothing
 * else. Returns the exit code.
 */
export async function newService(
  request: ScaffoldRequest,
  say: (line: string) => void,
  options: { root?: string; definitions?: Readonly<Record<string, ServiceDefinition>> } = {},
): Promise<number> {
  const root = options.root ?? repositoryRoot;
  const dir = path.join(root, 'services', request.key);
  let spec;
  try {
    if (existsSync(dir)) throw new ScaffoldError(`services/${request.key}/ already exists`);
    spec = scaffoldSpec(request, options.definitions ?? serviceDefinitions);
  } catch (error) {
    if (!(error instanceof ScaffoldError)) throw error;
    process.stderr.write(`new service: ${error.message}\n`);
    return 2;
  }
  const registryFile = path.join(root, 'registry/src/services.ts');
  const registry = withEntry(await readFile(registryFile, 'utf8'), registryEntry(spec.key, spec.definition));
  for (const [file, content] of Object.entries(serviceFiles(spec))) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content, { flag: 'wx' });
    say(`wrote services/${spec.key}/${file}`);
  }
  await writeFile(registryFile, registry);
  say(`added "${spec.key}" to registry/src/services.ts (port ${spec.definition.port}, database ${spec.definition.database}, route /api/v1/${spec.resource}, permission ${spec.resource}:read)`);
  say(`Next: npm install && npm run generate && npx vitest run services/${spec.key}/ && npm start (see README, "Adding a service")`);
  return 0;
}
