// Placeholder until the apps module lands.
import type { FastifyInstance } from 'fastify';
import type { PlatformContext } from '../platform/context.js';
import type { RouteHook } from '../platform/http/index.js';

export function registerAppRoutes(_app: FastifyInstance, _context: PlatformContext): void {}
export function registerIdempotency(_app: FastifyInstance, _context: PlatformContext): void {}
export function createAppAuthenticator(_context: PlatformContext): RouteHook {
  return async () => {};
}
