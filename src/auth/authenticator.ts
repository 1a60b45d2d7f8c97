import type { FastifyRequest } from 'fastify';
import { AssertionFailure } from '../platform/assert.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import type { RouteHook } from '../platform/http/index.js';
import { isPermission, rolesGrant, type Permission } from './permissions.js';
import { csrfHeaderName, findLiveSession, secretsEqual, sessionCookieName } from './sessions.js';

/**
 * The permission a route declares when any signed-in operator may use it,
 * whatever their roles (who am I, sign out, change my own password). It is a
 * deliberate marker, not a missing permission: an operator route with no
 * permission at all is a programmer error.
 */
export const sessionOnly = 'session';
export type RoutePermission = Permission | typeof sessionOnly;

const stateChangingMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The permission a route declared, checked before anything else so a misconfigured route fails loudly for everyone. */
export function declaredPermission(request: FastifyRequest): RoutePermission {
  const permission = request.routeOptions.config.permission;
  const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
  if (permission === undefined) throw new AssertionFailure(`operator route ${route} declares no permission in its config`);
  if (permission !== sessionOnly && !isPermission(permission)) throw new AssertionFailure(`operator route ${route} declares an unknown permission: ${permission}`);
  return permission;
}

export function sessionTokenOf(request: FastifyRequest): string | undefined {
  const token = request.cookies[sessionCookieName];
  return token === undefined || token.length === 0 ? undefined : token;
}

function checkCsrf(request: FastifyRequest): void {
  if (!stateChangingMethods.has(request.method)) return;
  const given = request.headers[csrfHeaderName];
  const expected = request.sessionCsrfToken;
  if (typeof given !== 'string' || expected === undefined || !secretsEqual(given, expected)) {
    throw new FenError('csrf_token_invalid', `state-changing requests need the session's CSRF token in the ${csrfHeaderName} header`);
  }
}

async function authenticateSession(context: PlatformContext, request: FastifyRequest): Promise<void> {
  const token = sessionTokenOf(request);
  const session = token === undefined ? undefined : await findLiveSession(context.db, context.clock, token);
  if (!session) throw new FenError('not_authenticated', 'sign in first: no live operator session');
  request.actor = { type: 'operator', id: session.userId, roles: session.roles, ip: request.ip, merchantId: null };
  request.sessionCsrfToken = session.csrfToken;
}

/**
 * The hook for routes with `auth: 'operator'`: a live session (cookie), the
 * CSRF token on state-changing methods, then the route's permission. Roles
 * are read from the user row on every request, so a role change or a disabled
 * account takes effect at once.
 */
export function createOperatorAuthenticator(context: PlatformContext): RouteHook {
  return async (request) => {
    const permission = declaredPermission(request);
    await authenticateSession(context, request);
    checkCsrf(request);
    if (permission !== sessionOnly && !rolesGrant(request.actor.roles, permission)) {
      throw new FenError('forbidden', `your roles do not include the permission ${permission}`);
    }
  };
}

