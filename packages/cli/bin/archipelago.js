#!/usr/bin/env node
// `npx archipelago …`: builds dist/ (a fraction of a second) and runs the compiled CLI.
import { build } from '../build.mjs';

await build();
await import('../../../dist/packages/cli/src/main.mjs');
