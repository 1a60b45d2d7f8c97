export { registerAppRoutes } from './apps.routes.js';
export { createAppAuthenticator } from './app-auth.js';
export { registerIdempotency, idempotencyRequestHash, replayedHeader } from './idempotency.js';
export { appJobHandlers, appCron, appCleanupTask, cleanupExpiredRequestRecords } from './apps.jobs.js';
export type { CleanupReport } from './apps.jobs.js';
export {
  createApp,
  getApp,
  listApps,
  updateApp,
  rotateAppSecret,
  getAppSecrets,
  resolveWebhookSecret,
  resolveWebhookSecrets,
  generateSecret,
} from './apps.service.js';
export type { CreateAppInput, UpdateAppInput, RotateSecretInput, LiveSecret } from './apps.service.js';
export { paymentMethods, appViewSchema } from './apps.schemas.js';
export type { AppView, CreatedApp, RotatedSecret, PaymentMethod, SecretKind } from './apps.schemas.js';
export { isAddressAllowed, isAllowlistEntry } from './ip-allowlist.js';
