import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { problemResponse, type HttpServer } from '@archipelago/platform';
import { isUnder } from './paths.ts';
import { isPublicPath, type Upstream } from './upstreams.ts';

interface OpenApiDocument {
  paths?: Record<string, Record<string, { security?: unknown; responses?: Record<string, unknown> }>>;
  components?: { schemas?: Record<string, unknown> };
  tags?: { name: string }[];
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

// What the gateway itself may answer on any proxied operation, beyond what the service documents.
const GATEWAY_RESPONSES = {
  429: problemResponse('Rate limit exceeded; retry after Retry-After'),
  502: problemResponse('The service behind the gateway is unreachable or failed'),
  504: problemResponse('The service behind the gateway did not answer in time'),
};

/** Swagger UI's files, from the `swagger-ui-dist` package: served by the gateway, no CDN. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Archipelago API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="api-reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/docs/json', dom_id: '#api-reference', deepLinking: true, persistAuthorization: true });\n`;

/**
 * `GET /docs`: an interactive API reference (Swagger UI) over `GET /docs/json`, the one OpenAPI
 * document with the public paths of every service behind the gateway.
 */
export async function mergedDocs(app: HttpServer, upstreams: readonly Upstream[]): Promise<void> {
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const assets = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) assets.set(name, await readFile(join(dist, name)));

  app.get('/docs', { schema: { hide: true } }, (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
  app.get('/docs/assets/init.js', { schema: { hide: true } }, (_request, reply) => reply.type('text/javascript; charset=utf-8').send(INIT));
  app.get<{ Params: { name: string } }>('/docs/assets/:name', { schema: { hide: true } }, async (request, reply) => {
    const body = assets.get(request.params.name);
    if (!body) return reply.callNotFound();
    return reply.type(ASSETS[request.params.name]!).header('cache-control', 'public, max-age=3600').send(body);
  });
  app.get('/docs/json', { schema: { hide: true } }, () => mergedDocument(upstreams));
}

async function mergedDocument(upstreams: readonly Upstream[]) {
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
  const paths: NonNullable<OpenApiDocument['paths']> = {};
  const schemas: Record<string, unknown> = {};
  const tags = new Map<string, { name: string }>();
  for (const { upstream, document } of documents) {
    for (const [path, item] of Object.entries(document?.paths ?? {})) {
      // Only what the gateway routes: a service's internal paths are not part of the public API.
      if (!upstream.routes.some((route) => isUnder(path, route.prefix))) continue;
      const publicPath = isPublicPath(upstreams, path);
      paths[path] = Object.fromEntries(
        Object.entries(item).map(([method, operation]) => [
          method,
          METHODS.has(method) ? { ...operation, ...(publicPath ? { security: [] } : {}), responses: { ...GATEWAY_RESPONSES, ...operation.responses } } : operation,
        ]),
      );
    }
    Object.assign(schemas, document?.components?.schemas ?? {});
    for (const tag of document?.tags ?? []) tags.set(tag.name, tag);
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Archipelago API', version: '0.1.0', description: 'Every service behind the gateway. Authenticate with Authorization: Bearer <access token or API token>. Errors are RFC 9457 problem+json.' },
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API token' } },
    },
    security: [{ bearer: [] }],
    tags: [...tags.values()],
    'x-unavailable': documents.filter((d) => !d.document).map((d) => d.upstream.service),
  };
}
