import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repositoryRoot } from '@archipelago/platform';

/** A throw-away copy of the repository: its own git history, its own workspace links. */
export interface RepositoryCopy {
  readonly root: string;
  /** Runs a command in the copy; resolves with its exit code and output, never throws. */
  run(command: string, args: readonly string[], env?: Record<string, string>): Promise<{ code: number | null; output: string }>;
  /** Paths git reports as changed or new since the copy was made (`git status --porcelain`). */
  changed(): string[];
  remove(): Promise<void>;
}

const GIT = ['-c', 'user.email=copy@localhost', '-c', 'user.name=copy', '-c', 'commit.gpgsign=false'];

/**
 * Copies the repository's files (tracked and untracked, not ignored: so a change not yet
 * committed is in) into a temporary directory and commits them there. node_modules holds links
 * to this checkout's packages, except the workspaces, which link to the copy's own folders, so
 * code in the copy imports the copy's registry and platform.
 */
export async function copyRepository(): Promise<RepositoryCopy> {
  const root = await mkdtemp(path.join(tmpdir(), 'archipelago-copy-'));
  await chmod(root, 0o755); // tests that run the CLI as another user (root → nobody) must reach its files
  const listed = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repositoryRoot, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(repositoryRoot, file);
    if (!existsSync(from)) continue; // deleted, not yet committed
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await copyFile(from, path.join(root, file));
  }
  await linkNodeModules(root);
  for (const args of [['init', '-q'], ['add', '-A'], ['commit', '-q', '-m', 'copy']]) {
    const git = spawnSync('git', [...GIT, ...args], { cwd: root, encoding: 'utf8' });
    if (git.status !== 0) throw new Error(`git ${args.join(' ')} failed in the copy: ${git.stderr}`);
  }
  return {
    root,
    run: (command, args, env = {}) =>
      new Promise((resolve) => {
        const child = spawn(command, [...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.on('close', (code) => resolve({ code, output }));
      }),
    changed() {
      const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: root, encoding: 'utf8' });
      return status.stdout.split('\n').filter(Boolean).map((line) => line.slice(3));
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

async function linkNodeModules(root: string): Promise<void> {
  const source = path.join(repositoryRoot, 'node_modules');
  const target = path.join(root, 'node_modules');
  await mkdir(path.join(target, '@archipelago'), { recursive: true });
  for (const entry of await readdir(source)) {
    if (entry !== '@archipelago') await symlink(path.join(source, entry), path.join(target, entry));
  }
  const { workspaces } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
  for (const pattern of workspaces) {
    const dirs = pattern.endsWith('/*')
      ? (await readdir(path.join(root, pattern.slice(0, -2)), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => path.join(pattern.slice(0, -2), e.name))
      : [pattern];
    for (const dir of dirs) {
      if (!existsSync(path.join(root, dir, 'package.json'))) continue;
      const { name } = JSON.parse(await readFile(path.join(root, dir, 'package.json'), 'utf8')) as { name: string };
      await symlink(path.join(root, dir), path.join(target, name));
    }
  }
}

/** Links a workspace added to the copy after it was made (what `npm install` does for a new service). */
export async function linkWorkspace(copy: RepositoryCopy, dir: string): Promise<void> {
  const { name } = JSON.parse(await readFile(path.join(copy.root, dir, 'package.json'), 'utf8')) as { name: string };
  await symlink(path.join(copy.root, dir), path.join(copy.root, 'node_modules', name));
}
