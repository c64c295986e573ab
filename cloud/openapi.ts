import type { FastifyInstance, RouteOptions } from 'fastify';

/**
 * Builds the OpenAPI 3.1 document from the routes' own JSON schemas, so the document cannot
 * drift from what the server validates. Routes register before `ready`; the document is
 * assembled on first request.
 */
interface Collected {
  method: string;
  url: string;
  schema: Record<string, unknown>;
}

export function collectOpenApi(app: FastifyInstance, info: { title: string; version: string }): () => Record<string, unknown> {
  const routes: Collected[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    if (!r.schema || r.url === '/openapi.json') return;
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m.toLowerCase(), url: r.url, schema: r.schema as Record<string, unknown> });
  });
  let doc: Record<string, unknown> | undefined;
  return () => {
    if (doc) return doc;
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of routes) {
      const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
      const s = r.schema as {
        summary?: string;
        tags?: string[];
        params?: { properties?: Record<string, unknown> };
        querystring?: { properties?: Record<string, unknown>; required?: string[] };
        body?: unknown;
        response?: Record<string, unknown>;
        security?: unknown;
      };
      const parameters = [
        ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
        ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: s.querystring?.required?.includes(name) ?? false,
          schema,
        })),
      ];
      const responses: Record<string, unknown> = {};
      for (const [code, schema] of Object.entries(s.response ?? { 200: {} })) {
        responses[code] = { description: `${code}`, content: { 'application/json': { schema } } };
      }
      (paths[path] ??= {})[r.method] = {
        summary: s.summary,
        tags: s.tags,
        security: s.security ?? (path.startsWith('/v1/gateway') ? [{ gatewayToken: [] }] : [{ apiKey: [] }]),
        parameters,
        ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } } : {}),
        responses,
      };
    }
    doc = {
      openapi: '3.1.0',
      info,
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'per-tenant admin API key (role owner, admin, reviewer or auditor)' },
          gatewayToken: { type: 'http', scheme: 'bearer', description: 'per-gateway token issued at registration' },
        },
      },
      paths,
    };
    return doc;
  };
}
