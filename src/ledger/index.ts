// Placeholder until the ledger module lands.
import type { FastifyInstance } from 'fastify';
import type { PlatformContext } from '../platform/context.js';

export function registerLedgerRoutes(_app: FastifyInstance, _context: PlatformContext): void {}
