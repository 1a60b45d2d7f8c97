/**
 * The UnionPay channel (银联全渠道, ACP 5.1.0): a connector written with
 * node:crypto (certificate signatures, signMethod=01), the pure transformers it
 * uses, and its exhaustive answer-code maps.
 */
export { UnionpayConnector, fileTransUrlOf, type PaymentForm, type UnionpayAccountConfig } from './connector.js';
export { answerBytesMax, downloadUnionpayBill, fileTransferFields, resultOfNonFileAnswer, type UnionpayBillDependencies } from './bill.js';
export {
  accessTypeMerchant,
  bizTypes,
  channelTypeInternet,
  fenNumberFor,
  formatBeijingCompact,
  frontFormHtml,
  moneyFromTxnAmt,
  notificationEventFromForm,
  orderIdFor,
  parseAnswerText,
  parseBeijingCompact,
  parseTraceTime,
  riskRateInfoFor,
  txnTimeFor,
  txnTypes,
  unionpayCurrency,
  unionpayCurrencyCode,
  unionpayEncoding,
  unionpayEndpoints,
  unionpayVersion,
  type UnionpayAnswer,
  type UnionpayCall,
  type UnionpayEndpoint,
} from './transformers.js';
export { answerClassMap, answerClassOf, transactionStatusMap, transactionStatusOf, unionpayRespCodes, type AnswerClass, type UnionpayRespCode } from './status-map.js';
export {
  certIdOf,
  checkSignerCertificate,
  commonNameOf,
  defaultUnionpaySignerName,
  signatureOf,
  signatureValid,
  signingDigestHex,
  signingString,
  signMethodCertificate,
  trustFrom,
  verifyUnionpayMessage,
  type UnionpayTrust,
} from './signature.js';
