// Placeholder until the merchants module lands.
import type { FastifyInstance } from 'fastify';
import type { PlatformContext } from '../platform/context.js';

export function registerMerchantRoutes(_app: FastifyInstance, _context: PlatformContext): void {}
