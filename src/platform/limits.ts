/**
 * Every limit in one place, named with its unit last. Raising one is a
 * deliberate change that shows up in review.
 */
export const limits = {
  requestBodyBytesMax: 1024 * 1024,
  pageSizeDefault: 20,
  pageSizeMax: 100,
  signatureWindowSeconds: 300,
  nonceLengthMin: 16,
  nonceLengthMax: 64,
  idempotencyKeyLengthMax: 255,
  idempotencyWaitMs: 15_000,
  idempotencyPollMs: 25,
  idempotencyLeaseSeconds: 60,
  idempotencyRetentionHours: 48,
  appSecretGraceSecondsDefault: 24 * 60 * 60,
  appSecretGraceSecondsMax: 7 * 24 * 60 * 60,
  ipAllowlistEntriesMax: 50,
  stringFieldLengthMax: 256,
  textFieldLengthMax: 2000,
  // 10 million yuan in fen: far below 2^53, so JSON numbers carry amounts exactly.
  amountPerPaymentMaxMinor: 1_000_000_000n,
  postingsPerEntryMax: 64,
  hotAccountSlots: 32,
  loginAttemptsMax: 5,
  loginLockoutSeconds: 15 * 60,
  sessionLifetimeSeconds: 12 * 60 * 60,
  auditPageSizeMax: 500,
  dbPoolSizeMax: 20,
  webhookTimeoutMs: 10_000,
  webhookLeaseSeconds: 60,
  webhookErrorLengthMax: 500,
  dueBatchSize: 100,
  channelCallTimeoutMs: 10_000,
  paymentExpirySecondsDefault: 30 * 60,
  paymentExpirySecondsMin: 60,
  paymentExpirySecondsMax: 24 * 60 * 60,
  // Unknown channel answers: ask again after 5 s, then back off to at most 5 minutes.
  channelQueryFirstDelaySeconds: 5,
  channelQueryDelayMaxSeconds: 5 * 60,
  channelQueryAttemptsMax: 40,
  // Orders paying longer than this are queried by the minute sweep.
  paymentStaleSeconds: 10 * 60,
  circuitFailuresToOpen: 3,
  circuitOpenSeconds: 30,
  metadataBytesMax: 4096,
} as const;
