import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { IamDatabase } from './database.ts';

await runService<IamDatabase>({ service: 'iam', buildApp });
