import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { appendAudit } from '../audit/index.js';
import type { FenConfig } from '../platform/config.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { commonErrorResponses } from '../platform/http/index.js';
import { limits } from '../platform/limits.js';
import { sessionOnly, sessionTokenOf } from './authenticator.js';
import { LoginRateLimiter } from './login-rate-limit.js';
import { passwordLengthMax } from './passwords.js';
import { rolePermissions, type Permission } from './permissions.js';
import { findLiveSession, hashSessionToken, revokeSession, sessionCookieName } from './sessions.js';
import { signIn } from './sign-in.js';
import { isOperatorRole } from './operators.service.js';

/** Sign in, sign out, and who am I: the routes the console calls around a session. */
const operatorSummarySchema = z.object({ id: z.string(), email: z.string(), name: z.string(), roles: z.array(z.string()) });

const loginBodySchema = z.object({
  email: z.string().trim().min(1).max(limits.stringFieldLengthMax),
  password: z.string().min(1).max(passwordLengthMax),
  // Loose on purpose: a malformed code is a failed attempt (counted), not a 400 that costs an attacker nothing.
  totp: z.string().min(1).max(16),
});

const loginResponseSchema = z.object({ operator: operatorSummarySchema, csrf_token: z.string(), expires_at: z.string() });
const meResponseSchema = z.object({
  operator: operatorSummarySchema.extend({ permissions: z.array(z.string()) }),
  csrf_token: z.string(),
  expires_at: z.string(),
});
const logoutResponseSchema = z.object({ signed_out: z.literal(true) });

const failedSignInCodes = new Set(['invalid_credentials', 'invalid_totp', 'account_locked']);

function permissionsOf(roles: readonly string[]): Permission[] {
  const granted = new Set<Permission>();
  for (const role of roles) if (isOperatorRole(role)) for (const permission of rolePermissions[role]) granted.add(permission);
  return [...granted].sort();
}

/** HttpOnly keeps the token from scripts; SameSite=Strict keeps it off cross-site requests; Secure whenever Fen serves HTTPS. */
export function sessionCookieOptions(config: Pick<FenConfig, 'tls'>, expiresAt: Date): CookieSerializeOptions {
  return { httpOnly: true, sameSite: 'strict', path: '/', secure: config.tls !== undefined, expires: expiresAt };
}

export function registerSignInRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerLoginRoute(app, context);
  registerSessionRoutes(app, context);
}

function registerLoginRoute(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  // One limiter per app instance: the buckets are this process's view of failures per address.
  const limiter = new LoginRateLimiter(context.clock);

  typed.post(
    '/admin/v1/auth/login',
    {
      schema: { tags: ['operator'], summary: 'Sign in with email, password and TOTP code', body: loginBodySchema, response: { 200: loginResponseSchema, ...commonErrorResponses } },
      config: { auth: 'none' },
    },
    async (request, reply) => {
      const retryAfterSeconds = limiter.retryAfterSeconds(request.ip);
      if (retryAfterSeconds > 0) {
        reply.header('retry-after', String(retryAfterSeconds));
        throw new FenError('rate_limited', `too many failed sign-ins from this address: try again in ${retryAfterSeconds} s`);
      }
      const { email, password, totp } = request.body;
      const input = { email, password, totpCode: totp, ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
      const signed = await signIn(context, input).catch((error: unknown) => {
        if (error instanceof FenError && failedSignInCodes.has(error.code)) limiter.recordFailure(request.ip);
        throw error;
      });
      reply.setCookie(sessionCookieName, signed.session.token, sessionCookieOptions(context.config, signed.session.expiresAt));
      reply.header('cache-control', 'no-store');
      const { operator } = signed;
      return { operator: { id: operator.id, email: operator.email, name: operator.name, roles: operator.roles }, csrf_token: signed.session.csrfToken, expires_at: signed.session.expiresAt.toISOString() };
    },
  );

}

function registerSessionRoutes(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/admin/v1/auth/logout',
    {
      schema: { tags: ['operator'], summary: 'Sign out: ends this session', response: { 200: logoutResponseSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: sessionOnly },
    },
    async (request, reply) => {
      const token = sessionTokenOf(request);
      if (token !== undefined) {
        await context.db.transaction().execute(async (trx) => {
          const revoked = await revokeSession(trx, context.clock, hashSessionToken(token));
          if (revoked) await appendAudit(trx, context.clock, { actor: request.actor, action: 'operator.signed_out', targetType: 'operator', targetId: request.actor.id });
        });
      }
      const { expires: _expires, ...clearOptions } = sessionCookieOptions(context.config, context.clock.now());
      reply.clearCookie(sessionCookieName, clearOptions);
      return { signed_out: true as const };
    },
  );

  typed.get(
    '/admin/v1/auth/me',
    {
      schema: { tags: ['operator'], summary: 'The signed-in operator, their permissions and the CSRF token', response: { 200: meResponseSchema, ...commonErrorResponses } },
      config: { auth: 'operator', permission: sessionOnly },
    },
    async (request, reply) => {
      const token = sessionTokenOf(request);
      const session = token === undefined ? undefined : await findLiveSession(context.db, context.clock, token);
      // The authenticator has just found this session; it can only be gone if it ended in between.
      if (!session) throw new FenError('not_authenticated', 'the session ended');
      reply.header('cache-control', 'no-store');
      return {
        operator: { id: session.userId, email: session.email, name: session.name, roles: session.roles, permissions: permissionsOf(session.roles) },
        csrf_token: session.csrfToken,
        expires_at: session.expiresAt.toISOString(),
      };
    },
  );
}
