import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { CoreDatabase } from './database.ts';

await runService<CoreDatabase>({ service: 'core', buildApp });
