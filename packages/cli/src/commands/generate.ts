import type { Registry } from '@archipelago/registry';
import { repositoryRoot } from '@archipelago/platform/layout';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { checkGenerated, generatedFiles, writeGenerated } from '../generate/index.ts';

/** `archipelago generate [--check]`; returns the exit code. */
export async function generate(registry: Registry, check: boolean, say: (line: string) => void, root = repositoryRoot): Promise<number> {
  const files = generatedFiles(registry, await repositoryWorkspaces(root));
  if (!check) {
    for (const file of await writeGenerated(root, files)) say(`wrote ${file}`);
    return 0;
  }
  const stale = await checkGenerated(root, files);
  if (stale.length === 0) {
    say(`All ${files.size} generated files match the registry.`);
    return 0;
  }
  for (const s of stale) say(s.diff);
  say(`\n${stale.length} generated file(s) are stale: ${stale.map((s) => s.file).join(', ')}. Run \`npm run generate\` and commit the result.`);
  return 1;
}

/** The workspace folders of the root package.json, with `dir/*` patterns expanded. */
export async function repositoryWorkspaces(root: string): Promise<string[]> {
  const { workspaces } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
  const result: string[] = [];
  for (const pattern of workspaces) {
    if (!pattern.endsWith('/*')) {
      result.push(pattern);
      continue;
    }
    const dir = pattern.slice(0, -2);
    const entries = await readdir(path.join(root, dir), { withFileTypes: true });
    result.push(...entries.filter((e) => e.isDirectory()).map((e) => `${dir}/${e.name}`).sort());
  }
  return result;
}
