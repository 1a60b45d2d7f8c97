import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { AssertionFailure } from '../assert.js';
import { FenError, errorCatalogue, type ErrorCode } from '../errors.js';

/**
 * Every error leaves as `{error: {code, message}}`. Client mistakes become a 4xx
 * with a stable code; only Fen's own faults are a 500, logged with the request id.
 */
function send(reply: { code(status: number): { send(body: unknown): unknown } }, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return reply.code(errorCatalogue[code]).send({ error: details ? { code, message, details } : { code, message } });
}

function describeValidation(error: FastifyError): { message: string; details: Record<string, unknown> } {
  const issues = (error.validation ?? []).map((issue) => {
    const where = [error.validationContext, issue.instancePath.replace(/^\//, '').replace(/\//g, '.')].filter(Boolean).join('.');
    return { field: where, problem: issue.message ?? 'invalid' };
  });
  const message = issues.map((issue) => `${issue.field || 'request'}: ${issue.problem}`).join('; ') || error.message;
  return { message, details: { issues } };
}

const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof FenError) return send(reply, error.code, error.message, error.details);
    if (hasZodFastifySchemaValidationErrors(error)) {
      const { message, details } = describeValidation(error);
      return send(reply, 'invalid_request', message, details);
    }
    if (isResponseSerializationError(error) || error instanceof AssertionFailure) {
      request.log.error({ err: error }, 'internal error');
      return send(reply, 'internal_error', `internal error (request ${request.id})`);
    }
    const mapped = error.code ? fastifyCodes[error.code] : undefined;
    if (mapped) return send(reply, mapped, error.message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, error.statusCode === 404 ? 'not_found' : 'invalid_request', error.message);
    }
    request.log.error({ err: error }, 'internal error');
    return send(reply, 'internal_error', `internal error (request ${request.id})`);
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, 'route_not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );
}
