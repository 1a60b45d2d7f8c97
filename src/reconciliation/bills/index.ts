/**
 * Channel bills: streaming parsers for Alipay's, WeChat Pay's and UnionPay's
 * formats into one record shape, with every total the file states checked
 * against its lines. Connectors and the CLI reach bills only through here.
 */
export { billChannels, BillFormatError, billLimits } from '../bill.types.js';
export type { BillChannel, BillCheck, BillErrorCode, BillLineKind, BillLineStatus, BillParse, BillRecord, BillSideTotals, BillSummary } from '../bill.types.js';
export { parseAlipayDetail, readAlipaySummary, type AlipayStatedSummary } from './alipay.js';
export { parseWechatpayTradeBill } from './wechatpay.js';
export { parseUnionpayZm, unionpayZmFields, unionpayZmFileName, unionpayZmLineBytes, type UnionpayFileContext, type UnionpayZmField } from './unionpay.js';
export { collectBill, forEachBillBatch, parseBillFile, type ParseBillFileOptions } from './files.js';
export { billRecordJson, billSummaryJson, jsonWithBigints } from './json.js';
export { beijingDayOf, formatBeijingDateTime } from './text.js';
export { channelBillFromFile } from './channel-bill.js';
