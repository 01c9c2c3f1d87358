import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { ReportingDatabase } from './database.ts';

await runService<ReportingDatabase>({ service: 'reporting', buildApp });
