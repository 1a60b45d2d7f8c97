/**
 * The Alipay channel: a connector over the official alipay-sdk (RSA2 requests,
 * signed JSON answers, signed form notifications), the pure transformers it
 * uses, and its exhaustive status maps.
 */
export { AlipayConnector, unknownFromSdkError, type AlipayAccountConfig } from './connector.js';
export {
  alipayApiMethods,
  alipayCurrency,
  alipayProductCodes,
  formatBeijingTime,
  moneyFromYuan,
  notificationEventFromForm,
  parseBeijingTime,
  responseKeyOf,
  yuanFromMinor,
  type AlipayAnswer,
  type AlipayApiMethod,
  type AlipayCall,
} from './transformers.js';
export {
  alipayTradeStatuses,
  alipayRefundStatuses,
  alipaySubCodes,
  answerClassOf,
  refundStatusMap,
  subCodeMap,
  tradeStatusMap,
  type AlipayTradeStatus,
} from './status-map.js';
export { notificationFields, notificationSignatureValid, privateKeyTypeOf } from './signature.js';
