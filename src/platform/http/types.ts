import type { Actor } from '../actor.js';

/** How a route is authenticated; every route says so in its config. */
export type RouteAuth = 'none' | 'app' | 'operator';

/** The app a signed merchant-API request came from, set by the app authentication hook. */
export interface AuthenticatedApp {
  appId: string;
  merchantId: string;
  enabledMethods: string[];
  notifyUrl: string | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
    /** The operator permission the route needs (operator routes only). */
    permission?: string;
    /** Off for routes that must not be replayed by Idempotency-Key. Default on for POST /v1. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    actor: Actor;
    /** The exact request body bytes as text, for signature checks. */
    rawBody: string | undefined;
    appAuth: AuthenticatedApp | undefined;
    /** The CSRF token of the operator's session, checked on state-changing requests. */
    sessionCsrfToken: string | undefined;
  }
}
