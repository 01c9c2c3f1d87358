import { runService } from '@archipelago/platform';
import { buildApp } from './app.ts';
import type { NotificationDatabase } from './database.ts';

await runService<NotificationDatabase>({ service: 'notification', buildApp });
