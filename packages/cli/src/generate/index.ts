import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Registry } from '@archipelago/registry';
import { composeFile } from './compose.ts';
import { dockerfile, dockerignore } from './dockerfile.ts';
import { initDatabasesSql, initServiceSql } from './init-sql.ts';
import { envExample, startDevScript } from './scripts.ts';

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(registry: Registry, workspaces: readonly string[]): Map<string, string> {
  const files = new Map<string, string>([
    ['infra/init-databases.sql', initDatabasesSql(registry.services)],
    ['infra/docker-compose.yml', composeFile(registry, 'development')],
    ['infra/docker-compose.production.yml', composeFile(registry, 'production')],
    ['infra/start-dev.sh', startDevScript(registry)],
    ['infra/Dockerfile', dockerfile(workspaces)],
    ['.env.example', envExample(registry)],
    ['.dockerignore', dockerignore()],
  ]);
  for (const service of registry.services.filter((s) => s.stateful)) {
    files.set(`infra/postgres/${service.database}.sql`, initServiceSql(service));
  }
  return files;
}

/** Writes the generated files; returns their paths. */
export async function writeGenerated(root: string, files: ReadonlyMap<string, string>): Promise<string[]> {
  for (const [file, content] of files) {
    const target = path.join(root, file);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content, { mode: file.endsWith('.sh') ? 0o755 : 0o644 });
  }
  return [...files.keys()];
}

/** One stale or missing file, with a unified diff from the committed to the expected content. */
export interface StaleFile {
  readonly file: string;
  readonly diff: string;
}

/** Compares committed files with what the registry generates now. */
export async function checkGenerated(root: string, files: ReadonlyMap<string, string>): Promise<StaleFile[]> {
  const stale: StaleFile[] = [];
  const scratch = await mkdtemp(path.join(tmpdir(), 'archipelago-generate-'));
  try {
    for (const [file, expected] of files) {
      const committed = await readFile(path.join(root, file), 'utf8').catch(() => undefined);
      if (committed === expected) continue;
      if (committed === undefined) {
        stale.push({ file, diff: `${file} is missing` });
        continue;
      }
      const expectedPath = path.join(scratch, path.basename(file));
      await writeFile(expectedPath, expected);
      stale.push({ file, diff: unifiedDiff(path.join(root, file), expectedPath, file) });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return stale;
}

function unifiedDiff(committedPath: string, expectedPath: string, label: string): string {
  try {
    execFileSync('diff', ['-u', '--label', `${label} (committed)`, '--label', `${label} (from registry)`, committedPath, expectedPath], { encoding: 'utf8' });
    return '';
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
}
