import Type from 'typebox';
import { AppError, type HttpServer } from '@archipelago/platform';
import { OPERATOR_ONLY } from '@archipelago/platform/internal-auth';
import { restoreArchive } from './archive.ts';
import type { ArchiveRepository } from './archive.repository.ts';
import type { ObjectStore } from './object-store.ts';

/** `POST /internal/v1/archives/restore`: the operator puts a department's day back from its archive. */
export function registerArchiveRoutes(app: HttpServer, repository: ArchiveRepository, store: ObjectStore): void {
  app.post(
    '/internal/v1/archives/restore',
    {
      config: OPERATOR_ONLY,
      schema: {
        hide: true,
        body: Type.Object({ department: Type.String({ pattern: '^([A-Z0-9][A-Z0-9._-]{0,19}|_none)$' }), day: Type.String({ format: 'date' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ restored: Type.Integer(), inArchive: Type.Integer() }) },
      },
    },
    async (request) => {
      const result = await restoreArchive(repository, store, request.body.department, request.body.day);
      if (!result) throw new AppError('NOT_FOUND', `No archive of ${request.body.department} on ${request.body.day}`);
      return result;
    },
  );
}
