import type { FastifyInstance } from 'fastify';
import { registerAppRoutes, registerIdempotency, createAppAuthenticator } from '../apps/index.js';
import { registerAuditRoutes } from '../audit/index.js';
import { createOperatorAuthenticator, registerAuthRoutes } from '../auth/index.js';
import { registerCashierRoutes } from '../cashier/index.js';
import { registerLedgerRoutes } from '../ledger/index.js';
import { registerMerchantRoutes } from '../merchants/index.js';
import { registerChannelNotificationRoutes, registerPaymentRoutes } from '../payments/index.js';
import { registerReconciliationRoutes } from '../reconciliation/index.js';
import { registerRoutingRoutes } from '../routing/index.js';
import type { PlatformContext } from '../platform/context.js';
import { createHttpServer } from '../platform/http/index.js';

export interface BuildAppOptions {
  logRequests?: boolean;
  /** Extra routes, registered like any module's (tests use it to exercise plugins). */
  extraRoutes?: (app: FastifyInstance) => void | Promise<void>;
}

/**
 * The whole HTTP surface, built without listening, so tests inject requests.
 * Each module registers its own routes through its index.ts.
 */
export async function buildApp(context: PlatformContext, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = await createHttpServer(context, {
    authenticateOperator: createOperatorAuthenticator(context),
    authenticateApp: createAppAuthenticator(context),
    logRequests: options.logRequests ?? true,
  });
  registerIdempotency(app, context);
  registerAuthRoutes(app, context);
  registerMerchantRoutes(app, context);
  registerAppRoutes(app, context);
  registerLedgerRoutes(app, context);
  registerAuditRoutes(app, context);
  registerRoutingRoutes(app, context);
  registerPaymentRoutes(app, context);
  registerCashierRoutes(app, context);
  registerChannelNotificationRoutes(app, context);
  registerReconciliationRoutes(app, context);
  if (options.extraRoutes) await options.extraRoutes(app);
  await app.ready();
  return app;
}
