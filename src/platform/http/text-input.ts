import type { FastifyRequest } from 'fastify';
import { FenError } from '../errors.js';

/**
 * Text Fen cannot store: PostgreSQL refuses U+0000 in text and jsonb, and
 * refuses a lone UTF-16 surrogate written as a JSON escape (metadata is
 * stored as jsonb), so such a string reached the database and came back as a
 * 500. Found by test/fuzz/merchant-api.test.ts (`GET /v1/events?object_id=%00`
 * answered 500). Every string of the parts a route validates with a schema —
 * query, path parameters, and the parsed body's values and keys — is checked
 * here, once, before validation and before any service sees it, so the client
 * gets a 400 that says why. Routes that parse their input themselves (the
 * cashier's HTML pages) keep their own answers.
 */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Deep enough for any body Fen accepts; deeper input is refused rather than walked. */
const depthMax = 64;

function badText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains a NUL character (U+0000)';
  if (loneSurrogate.test(value)) return 'is not well-formed Unicode (a lone surrogate)';
  return undefined;
}

function findBadText(value: unknown, path: string, depth: number): string | undefined {
  if (typeof value === 'string') {
    const problem = badText(value);
    return problem ? `${path || 'value'} ${problem}` : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > depthMax) return `${path || 'value'} is nested more than ${depthMax} levels deep`;
  for (const [key, child] of Object.entries(value)) {
    const where = path ? `${path}.${key}` : key;
    const keyProblem = badText(key);
    if (keyProblem) return `a key in ${path || 'the body'} ${keyProblem}`;
    const found = findBadText(child, where, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A preValidation hook: refuses a request carrying text PostgreSQL cannot hold. */
export async function refuseUnstorableText(request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema;
  if (!schema) return;
  const problem =
    (schema.params ? findBadText(request.params, 'path', 0) : undefined) ??
    (schema.querystring ? findBadText(request.query, 'query', 0) : undefined) ??
    (schema.body ? findBadText(request.body, 'body', 0) : undefined);
  if (problem) throw new FenError('invalid_request', `${problem}; send well-formed UTF-8 text without NUL characters`);
}
