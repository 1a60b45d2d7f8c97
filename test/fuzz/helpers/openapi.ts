import type { FastifyInstance } from 'fastify';
import type { JsonSchema } from './json-schema.js';

/**
 * The routes to fuzz, read from Fen's own OpenAPI document (/docs/json), so a
 * route added later is fuzzed without anyone remembering to. Each route falls
 * in one group by its prefix; a public route in no group fails the run.
 */
export type RouteGroup = 'merchant' | 'operator' | 'channel' | 'cashier';

export interface Parameter {
  name: string;
  schema: JsonSchema;
  required: boolean;
}

export interface Operation {
  method: string;
  /** OpenAPI form: `/v1/payments/{id}`. */
  path: string;
  /** `POST /v1/payments/{id}/refunds`, for reports and budgets. */
  key: string;
  group: RouteGroup;
  pathParameters: Parameter[];
  queryParameters: Parameter[];
  /** The JSON body schema; undefined when the route declares none. */
  body: JsonSchema | undefined;
  /** How its errors look: the API's JSON body, or an HTML page (the cashier's pages). */
  errorFormat: 'json' | 'html';
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
}

export function groupOf(path: string): RouteGroup | undefined {
  if (path.startsWith('/v1/')) return 'merchant';
  if (path.startsWith('/admin/v1/')) return 'operator';
  if (path.startsWith('/channels/')) return 'channel';
  if (path.startsWith('/pay/')) return 'cashier';
  return undefined;
}

/**
 * The cashier's HTML routes are hidden from the API document (they are pages,
 * not API), but they are public and take input, so they are fuzzed too. Their
 * `lang` is any text: an unknown language is ignored, not refused.
 */
const hiddenCashierRoutes: Operation[] = [
  {
    method: 'GET',
    path: '/pay/{id}',
    key: 'GET /pay/{id}',
    group: 'cashier',
    pathParameters: [{ name: 'id', schema: { type: 'string' }, required: true }],
    queryParameters: [{ name: 'lang', schema: { type: 'string' }, required: false }],
    body: undefined,
    errorFormat: 'html',
  },
  {
    method: 'POST',
    path: '/pay/{id}/method',
    key: 'POST /pay/{id}/method',
    group: 'cashier',
    pathParameters: [{ name: 'id', schema: { type: 'string' }, required: true }],
    queryParameters: [],
    body: { type: 'object', properties: { method: { type: 'string', enum: ['alipay_qr', 'alipay_page', 'wechat_native', 'wechat_h5', 'unionpay_web'] }, lang: {} }, required: ['method'] },
    errorFormat: 'html',
  },
];

export async function loadOperations(app: FastifyInstance): Promise<Operation[]> {
  const response = await app.inject({ method: 'GET', url: '/docs/json' });
  if (response.statusCode !== 200) throw new Error(`/docs/json answered ${response.statusCode}`);
  const document = response.json<OpenApiDocument>();
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, spec] of Object.entries(methods)) {
      const group = groupOf(path);
      if (!group) throw new Error(`${method.toUpperCase()} ${path} is public but belongs to no fuzzing group: add it to groupOf()`);
      const parameters = (spec.parameters ?? []).map((parameter) => ({ in: parameter.in, name: parameter.name, schema: parameter.schema ?? {}, required: parameter.required === true }));
      const content = spec.requestBody?.content;
      operations.push({
        method: method.toUpperCase(),
        path,
        key: `${method.toUpperCase()} ${path}`,
        group,
        pathParameters: parameters.filter((parameter) => parameter.in === 'path'),
        queryParameters: parameters.filter((parameter) => parameter.in === 'query'),
        body: content ? (content['application/json']?.schema ?? {}) : undefined,
        errorFormat: 'json',
      });
    }
  }
  const documented = new Set(operations.map((operation) => operation.key));
  for (const hidden of hiddenCashierRoutes) if (!documented.has(hidden.key)) operations.push(hidden);
  return operations;
}
