import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const distMarker = `${path.sep}dist${path.sep}`;
/** True when running the compiled dist/ (npm start); false when running TypeScript (tests, tsx). */
const compiled = here.includes(distMarker);

/** The repository root. */
export const repositoryRoot = compiled ? here.slice(0, here.indexOf(distMarker)) : path.resolve(path.dirname(here), '../../..');

/** Where a service's parts live, by convention: a service is a folder. */
export interface ServiceLayout {
  readonly root: string;
  /** Entry point: `src/main.ts`, or its compiled `.mjs` in dist/. */
  readonly main: string;
  readonly migrations: string;
  /** Exports `seed(db)`: idempotent sample and reference data. */
  readonly seed: string;
}

/**
 * The files of a service, as TypeScript sources or, when this code runs compiled, as their
 * compiled copies under dist/ (see packages/cli/build.mjs).
 */
export function serviceLayout(key: string, root = repositoryRoot): ServiceLayout {
  const codeRoot = compiled ? path.join(root, 'dist') : root;
  const ext = compiled ? '.mjs' : '.ts';
  const dir = path.join(codeRoot, 'services', key);
  return {
    root: path.join(root, 'services', key),
    main: path.join(dir, 'src', `main${ext}`),
    migrations: path.join(dir, 'migrations'),
    seed: path.join(dir, 'src', `seed${ext}`),
  };
}
