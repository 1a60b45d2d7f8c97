import type { FastifyInstance } from 'fastify';
import type { PlatformContext } from '../platform/context.js';
import { registerSignInRoutes } from './auth.routes.js';
import { registerOperatorRoutes } from './operators.routes.js';

/**
 * Operator authentication: passwords and TOTP, sessions, roles and
 * permissions, the authenticator for `auth: 'operator'` routes, and operator
 * management. Other modules use only what is exported here.
 */
export * from './permissions.js';
export { createOperatorAuthenticator, sessionOnly, type RoutePermission } from './authenticator.js';
export {
  createOperator,
  updateOperator,
  setOperatorRoles,
  disableOperator,
  resetTotp,
  setOperatorPassword,
  getOperator,
  listOperators,
  isOperatorRole,
} from './operators.service.js';
export type { OperatorView, OperatorStatus, OperatorChanges, CreateOperatorInput, TotpEnrolment } from './operators.service.js';
export { signIn } from './sign-in.js';
export type { SignInInput, SignedIn } from './sign-in.js';
export { sessionCookieName, csrfHeaderName } from './sessions.js';
export { passwordLengthMin, passwordLengthMax, passwordProblem } from './passwords.js';
export { totpCodeAt, totpUri, totpPeriodSeconds } from './totp.js';
export { authJobHandlers, authCron, authCleanupTask, cleanUpAuthState } from './auth.jobs.js';

/** Registers every /admin/v1/auth and /admin/v1/operators route. */
export function registerAuthRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerSignInRoutes(app, context);
  registerOperatorRoutes(app, context);
}
