// Placeholder until the auth module lands.
import type { FastifyInstance } from 'fastify';
import type { PlatformContext } from '../platform/context.js';
import type { RouteHook } from '../platform/http/index.js';

export * from './permissions.js';
export function registerAuthRoutes(_app: FastifyInstance, _context: PlatformContext): void {}
export function createOperatorAuthenticator(_context: PlatformContext): RouteHook {
  return async () => {};
}
