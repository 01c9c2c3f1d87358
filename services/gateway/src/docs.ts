import type { HttpServer } from '@archipelago/platform';
import type { Upstream } from './upstreams.ts';

interface OpenApiDocument {
  paths?: Record<string, unknown>;
  components?: { schemas?: Record<string, unknown> };
  tags?: { name: string }[];
}

/** `GET /docs`: one OpenAPI document with the public paths of every service behind the gateway. */
export function mergedDocs(app: HttpServer, upstreams: readonly Upstream[]): void {
  app.get('/docs', { schema: { hide: true } }, async () => {
    const documents = await Promise.all(
      upstreams.map(async (upstream) => {
        try {
          const response = await fetch(`${upstream.url}/docs/json`, { signal: AbortSignal.timeout(2_000) });
          return response.ok ? { upstream, document: (await response.json()) as OpenApiDocument } : { upstream };
        } catch {
          return { upstream };
        }
      }),
    );
    const paths: Record<string, unknown> = {};
    const schemas: Record<string, unknown> = {};
    const tags = new Map<string, { name: string }>();
    for (const { upstream, document } of documents) {
      for (const [path, item] of Object.entries(document?.paths ?? {})) {
        // Only what the gateway routes: a service's internal paths are not part of the public API.
        if (upstream.routes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) paths[path] = item;
      }
      Object.assign(schemas, document?.components?.schemas ?? {});
      for (const tag of document?.tags ?? []) tags.set(tag.name, tag);
    }
    return {
      openapi: '3.0.3',
      info: { title: 'Archipelago API', version: '0.1.0', description: 'Every service behind the gateway. Authenticate with Authorization: Bearer <access token or API token>.' },
      paths,
      components: {
        schemas,
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API token' } },
      },
      security: [{ bearer: [] }],
      tags: [...tags.values()],
      'x-unavailable': documents.filter((d) => !d.document).map((d) => d.upstream.service),
    };
  });
}
