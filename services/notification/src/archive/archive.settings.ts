import path from 'node:path';
import { backingConfigSchemas, loadConfig, repositoryRoot } from '@archipelago/platform';
import { serviceDefinitions } from '@archipelago/registry';
import { fileObjectStore, s3ObjectStore, type ObjectStore } from './object-store.ts';

/** How long notifications and their archives are kept, and where archives go. */
export interface ArchiveSettings {
  readonly retentionDays: number;
  readonly keepArchivesDays: number;
  readonly store: ObjectStore;
}

/** The archival's variables, declared once in the registry (notification's `config`, and `uses: ['objectStorage']`). */
export function archiveSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): ArchiveSettings {
  const config = loadConfig(serviceDefinitions.notification.config, env);
  const storage = loadConfig(backingConfigSchemas.objectStorage, env);
  const store = storage.OBJECT_STORAGE_URL
    ? s3ObjectStore({
        endpoint: storage.OBJECT_STORAGE_URL, region: storage.OBJECT_STORAGE_REGION, bucket: config.NOTIFICATION_ARCHIVE_BUCKET,
        accessKeyId: storage.OBJECT_STORAGE_ACCESS_KEY_ID, secretAccessKey: storage.OBJECT_STORAGE_SECRET_ACCESS_KEY,
      })
    : fileObjectStore(path.resolve(repositoryRoot, config.NOTIFICATION_ARCHIVE_DIR ?? path.join('.data', 'archives')));
  return { retentionDays: config.NOTIFICATION_RETENTION_DAYS, keepArchivesDays: config.NOTIFICATION_ARCHIVE_KEEP_DAYS, store };
}
