/**
 * The WeChat Pay channel (API v3): a connector over wechatpay-axios-plugin
 * (WECHATPAY2-SHA256-RSA2048 requests, answers verified with the platform
 * public key), the pure transformers it uses, its exhaustive status maps, and
 * notification verification and decryption (AEAD_AES_256_GCM).
 */
export { WechatpayConnector, outcomeFromError, type WechatpayAccountConfig } from './connector.js';
export { billLocationFromAnswer, downloadPathOf, downloadWechatpayBill, tradeBillPath, type BillLocation, type WechatpayBillDependencies, type WechatpayGetEndpoint } from './bill.js';
export {
  createOperations,
  fenFromJson,
  formatBeijingRfc3339,
  moneyFromAmount,
  notificationEventFromResource,
  parseRfc3339,
  wechatpayCurrency,
  wechatpayOperations,
  type WechatpayAnswer,
  type WechatpayCall,
  type WechatpayMethod,
  type WechatpayOperation,
} from './transformers.js';
export {
  errorCodeMap,
  eventTypeMap,
  refundStatusMap,
  tradeStateMap,
  wechatpayErrorClasses,
  wechatpayErrorCodes,
  wechatpayEventTypes,
  wechatpayRefundStatuses,
  wechatpayTradeStates,
  type WechatpayTradeState,
} from './status-map.js';
export {
  acknowledgements,
  apiV3KeyLength,
  decryptResource,
  resourceAlgorithm,
  signatureClockSkewSecondsMax,
  signatureType,
  verifyNotificationSignature,
  verifyWechatpayNotification,
  type NotificationKeys,
} from './notification.js';
