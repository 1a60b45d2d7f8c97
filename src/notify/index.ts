export { recordEvent, eventTypes, deliverEventTask } from './events.service.js';
export type { EventType, NewEvent } from './events.service.js';
export { deliverEvent, deliverDueEvents } from './delivery.js';
export type { DeliveryOutcome, WebhookFetch } from './delivery.js';
export { webhookRetryDelaysSeconds, webhookAttemptsMax, nextAttemptAt } from './schedule.js';
