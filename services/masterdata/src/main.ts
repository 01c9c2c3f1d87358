import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { MasterdataDatabase } from './database.ts';

await runService<MasterdataDatabase>({ service: 'masterdata', buildApp });
