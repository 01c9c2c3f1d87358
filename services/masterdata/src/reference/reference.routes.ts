import Type from 'typebox';
import type { HttpServer } from '@archipelago/platform';
import type { CrudRepository } from '@archipelago/platform/crud';

/** A batch check of codes for other services' references: `POST /internal/v1/<plural>/validate {codes}`. */
export function validateRoute(app: HttpServer, rows: CrudRepository): void {
  app.post(
    `/internal/v1/${rows.table.path.split('/').at(-1)}/validate`,
    {
      schema: {
        hide: true,
        // Any code may be asked about: one that could never exist is simply not found.
        body: Type.Object({ codes: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ code: Type.String(), active: Type.Boolean() })) }) },
      },
    },
    async (request) => {
      const found = (await rows.findAmong([...new Set(request.body.codes)])) as unknown as { code: string; is_active: boolean }[];
      return { items: found.map((row) => ({ code: row.code, active: row.is_active })) };
    },
  );
}
