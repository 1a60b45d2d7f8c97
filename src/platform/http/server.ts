import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyReply } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { readFileSync } from 'node:fs';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import { z } from 'zod';
import { systemActor, type Actor } from '../actor.js';
import { FenError, errorCatalogue } from '../errors.js';
import { newId } from '../ids.js';
import { limits } from '../limits.js';
import { loggerOptions } from '../logging.js';
import type { PlatformContext } from '../context.js';
import { registerErrorHandling } from './errors.js';
import { refuseUnstorableText } from './text-input.js';
import './types.js';

export type HttpServer = FastifyInstance;
export type RouteHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface HttpServerOptions {
  /** Authenticates routes whose config says `auth: 'operator'`. */
  authenticateOperator: RouteHook;
  /** Authenticates routes whose config says `auth: 'app'`. */
  authenticateApp: RouteHook;
  /** Log requests (off in tests to keep output readable). */
  logRequests?: boolean;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{8,128}$/;

function parseJsonBody(request: FastifyRequest, body: string): unknown {
  request.rawBody = body;
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new FenError('invalid_request', `the body is not valid JSON: ${(error as Error).message}`);
  }
}

function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: limits.requestBodyBytesMax }, (request, body, done) => {
    try {
      done(null, parseJsonBody(request, body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  // Channels post their notifications as forms (Alipay, UnionPay): keep the raw text for signature checks.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: limits.requestBodyBytesMax }, (request, body, done) => {
    request.rawBody = body as string;
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: limits.requestBodyBytesMax }, (request, body, done) => {
    request.rawBody = body as string;
    if ((body as string).length === 0) return done(null, undefined);
    done(new FenError('unsupported_media_type', `content type ${request.headers['content-type'] ?? '(none)'} is not accepted; send application/json`), undefined);
  });
}

function registerMetrics(app: FastifyInstance): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fen_process_' });
  const duration = new Histogram({
    name: 'fen_http_request_duration_seconds',
    help: 'HTTP request latency by route and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const errors = new Counter({ name: 'fen_http_errors_total', help: 'Responses with status 500 or above.', labelNames: ['route'], registers: [registry] });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) errors.inc({ route });
  });
  return registry;
}

function tlsOptions(context: PlatformContext): { https: { cert: Buffer; key: Buffer } } | Record<string, never> {
  const tls = context.config.tls;
  if (!tls) return {};
  return { https: { cert: readFileSync(tls.certificatePath), key: readFileSync(tls.keyPath) } };
}

export async function createHttpServer(context: PlatformContext, options: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...tlsOptions(context),
    logger: options.logRequests === false ? false : { ...loggerOptions(context.config.logLevel) },
    bodyLimit: limits.requestBodyBytesMax,
    trustProxy: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : newId('request');
    },
    ajv: { customOptions: { coerceTypes: false } },
    // Errors the router raises before any route runs get the same stable body as every other error.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const code = tooLong ? 'uri_too_long' : 'invalid_request';
      void reply.code(errorCatalogue[code]).send({ error: { code, message: tooLong ? 'a path parameter is too long' : error.message } });
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('actor', null as unknown as Actor);
  app.decorateRequest('rawBody', undefined);
  app.decorateRequest('appAuth', undefined);
  app.decorateRequest('sessionCsrfToken', undefined);
  app.addHook('onRequest', async (request, reply) => {
    request.actor = { ...systemActor, ip: request.ip };
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    if (context.config.tls) reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
  });
  registerErrorHandling(app);
  registerBodyParsers(app);
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Fen API', version: '1', description: 'Merchant API (/v1, signed by apps) and operator API (/admin/v1, session + 2FA).' },
      components: {
        securitySchemes: {
          appSignature: { type: 'apiKey', in: 'header', name: 'Fen-Signature' },
          operatorSession: { type: 'apiKey', in: 'cookie', name: 'fen_session' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  const metrics = registerMetrics(app);
  // Authentication runs after the body is parsed (app signatures cover it) and
  // before validation, so an unauthenticated caller learns nothing of the schema.
  app.addHook('preValidation', async (request, reply) => {
    const auth = request.routeOptions.config?.auth ?? 'none';
    if (auth === 'operator') await options.authenticateOperator(request, reply);
    else if (auth === 'app') await options.authenticateApp(request, reply);
  });
  // Text PostgreSQL cannot store is refused with a 400 before validation (see text-input.ts).
  app.addHook('preValidation', refuseUnstorableText);
  registerHealthRoutes(app, context, metrics);
  return app;
}

function registerHealthRoutes(app: FastifyInstance, context: PlatformContext, metrics: Registry): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const health = z.object({ status: z.literal('ok') });
  typed.get('/healthz', { schema: { hide: true, response: { 200: health } }, config: { auth: 'none' } }, async () => ({ status: 'ok' as const }));
  typed.get(
    '/readyz',
    { schema: { hide: true, response: { 200: health, 503: z.object({ status: z.literal('unavailable'), reason: z.string() }) } }, config: { auth: 'none' } },
    async (_request, reply) => {
      try {
        await sql`SELECT 1`.execute(context.db);
        return { status: 'ok' as const };
      } catch (error) {
        return reply.code(503).send({ status: 'unavailable' as const, reason: `database: ${(error as Error).message}` });
      }
    },
  );
  app.get('/metrics', { schema: { hide: true }, config: { auth: 'none' } }, async (_request, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
}
