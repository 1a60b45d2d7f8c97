import type { ChannelStatus } from '../connector.js';

/**
 * Every UnionPay ACP answer code (应答码, "平台接入接口规范 第5部分 附录") that
 * the online gateway can send for the transactions Fen makes, mapped twice:
 *
 *  - as the `respCode` of a synchronous answer, which says what happened to
 *    *this request* (was the refund accepted, did the query run);
 *  - as the `origRespCode` of a query answer (and the `respCode` of a back
 *    notification), which says what happened to *the transaction* asked about.
 *
 * Both maps are checked by the compiler against the one list of codes
 * (`satisfies Record<…>`), so a code cannot be added without deciding what it
 * means in each role. A code that is not listed is looked up as `undefined`,
 * which the transformers turn into `unknown` (and the connector logs) — never
 * into a success or a failure.
 */

export const unionpayRespCodes = [
  '00', // 成功 success
  '01', // 交易失败 transaction failed
  '02', // 系统未开放或暂时关闭 system closed for now
  '03', // 交易通讯超时，请发起查询交易 communication timed out: query
  '04', // 交易状态未明，请查询对账结果 state unknown: query
  '05', // 交易已受理，请稍后查询交易结果 accepted: query later
  '06', // 系统繁忙 system busy
  '10', // 报文格式错误 malformed message
  '11', // 验证签名失败 signature did not verify
  '12', // 重复交易 duplicate transaction (same orderId and txnTime)
  '13', // 报文交易要素缺失 a required field is missing
  '14', // 批量文件格式错误 batch file format error
  '30', // 交易未通过 transaction not approved
  '31', // 商户状态不正确 merchant not in a valid state
  '32', // 无此交易权限 no permission for this transaction
  '33', // 交易金额超限 amount over the limit
  '34', // 查无此交易 no such transaction
  '35', // 原交易不存在或状态不正确 original transaction missing or in the wrong state
  '36', // 与原交易信息不符 does not agree with the original transaction
  '37', // 已超过最大查询次数或操作过于频繁 too many queries or too frequent
  '38', // 银联风险受限 refused by UnionPay's risk control
  '39', // 交易不在受理时间范围内 outside the accepting hours
  '40', // 绑定关系检查失败 binding check failed
  '42', // 扣款成功但交易超过规定支付时间 debited, but after the payment time limit
  '43', // 无此业务权限 no permission for this business type
  '60', // 交易失败，详情请咨询您的发卡行 declined by the issuer
  '61', // 输入的卡号无效 invalid card number
  '62', // 发卡银行不支持该商户 issuer does not support this merchant
  '63', // 卡状态不正确 card not in a valid state
  '64', // 卡上的余额不足 insufficient funds
  '65', // 密码、有效期或CVN2有误 wrong PIN, expiry or CVN2
  '66', // 持卡人身份信息或手机号输入不正确 cardholder details wrong
  '67', // 密码输入次数超限 too many PIN attempts
  '68', // 银行卡暂不支持该业务 card does not support this business
  '69', // 您的输入超时，交易失败 the payer took too long
  '70', // 交易已跳转，等待持卡人输入 waiting for the cardholder
  '71', // 动态口令或短信验证码校验失败 one-time code wrong
  '73', // 支付卡已超过有效期 card expired
  '77', // 银行卡未开通认证支付 card not enabled for this payment
  '78', // 发卡行交易权限受限 issuer restricted the card
  '83', // 发卡行（渠道）处理中 issuer still processing
  '84', // 动态口令或短信验证码已失效 one-time code expired
  '99', // 通用错误 general error
  'A6', // 有缺陷的成功 success with defects
] as const;
export type UnionpayRespCode = (typeof unionpayRespCodes)[number];

/**
 * What a synchronous answer's respCode means for the request that got it:
 *  - `success`: UnionPay did what was asked (for a refund: accepted it);
 *  - `retry`: UnionPay cannot say yet (03/04/05): the outcome is unknown, query later;
 *  - `not_found`: the transaction asked about does not exist (34);
 *  - `duplicate`: a transaction with this orderId and txnTime exists already (12)
 *    — for a retried refund that means the first attempt got through, so it is
 *    settled by a query, never taken as a refusal;
 *  - `rejected`: UnionPay refused this request and changed nothing.
 * Each operation decides what a class means for it: a rejected query tells
 * nothing about the transaction, a rejected refund means no money moved.
 */
export const answerClasses = ['success', 'retry', 'not_found', 'duplicate', 'rejected'] as const;
export type AnswerClass = (typeof answerClasses)[number];

export const answerClassMap = {
  '00': 'success',
  // With defects, but done.
  A6: 'success',
  '03': 'retry',
  '04': 'retry',
  '05': 'retry',
  // The issuer has not answered yet: as unknown as 03–05.
  '83': 'retry',
  '12': 'duplicate',
  '34': 'not_found',
  '01': 'rejected',
  '02': 'rejected',
  '06': 'rejected',
  '10': 'rejected',
  '11': 'rejected',
  '13': 'rejected',
  '14': 'rejected',
  '30': 'rejected',
  '31': 'rejected',
  '32': 'rejected',
  '33': 'rejected',
  '35': 'rejected',
  '36': 'rejected',
  '37': 'rejected',
  '38': 'rejected',
  '39': 'rejected',
  '40': 'rejected',
  '42': 'rejected',
  '43': 'rejected',
  '60': 'rejected',
  '61': 'rejected',
  '62': 'rejected',
  '63': 'rejected',
  '64': 'rejected',
  '65': 'rejected',
  '66': 'rejected',
  '67': 'rejected',
  '68': 'rejected',
  '69': 'rejected',
  '70': 'rejected',
  '71': 'rejected',
  '73': 'rejected',
  '77': 'rejected',
  '78': 'rejected',
  '84': 'rejected',
  '99': 'rejected',
} as const satisfies Record<UnionpayRespCode, AnswerClass>;

/**
 * What a transaction's result code (origRespCode of a query, respCode of a
 * back notification) says about the payment or refund itself.
 */
export const transactionStatusMap = {
  '00': 'succeeded',
  A6: 'succeeded',
  // The card was debited, only too late. Money moved, so it is a success for
  // the books; a payment Fen has closed meanwhile becomes Fen's "paid after
  // close" exception and is refunded, which is exactly what this case needs.
  '42': 'succeeded',
  '03': 'pending',
  '04': 'pending',
  '05': 'pending',
  '70': 'pending',
  '83': 'pending',
  '01': 'failed',
  '02': 'failed',
  '06': 'failed',
  '10': 'failed',
  '11': 'failed',
  // A transaction whose own result is "duplicate" or "no such transaction" did not take money.
  '12': 'failed',
  '13': 'failed',
  '14': 'failed',
  '30': 'failed',
  '31': 'failed',
  '32': 'failed',
  '33': 'failed',
  '34': 'failed',
  '35': 'failed',
  '36': 'failed',
  '37': 'failed',
  '38': 'failed',
  '39': 'failed',
  '40': 'failed',
  '43': 'failed',
  '60': 'failed',
  '61': 'failed',
  '62': 'failed',
  '63': 'failed',
  '64': 'failed',
  '65': 'failed',
  '66': 'failed',
  '67': 'failed',
  '68': 'failed',
  '69': 'failed',
  '71': 'failed',
  '73': 'failed',
  '77': 'failed',
  '78': 'failed',
  '84': 'failed',
  '99': 'failed',
} as const satisfies Record<UnionpayRespCode, ChannelStatus>;

function lookup<Key extends string, Value>(map: Record<Key, Value>, key: string | undefined): Value | undefined {
  return key !== undefined && Object.hasOwn(map, key) ? map[key as Key] : undefined;
}

/** The class of a synchronous answer, or `undefined` for a code not listed here. */
export function answerClassOf(respCode: string | undefined): AnswerClass | undefined {
  return lookup(answerClassMap, respCode);
}

/** The status of a transaction by its result code, or `undefined` for a code not listed here. */
export function transactionStatusOf(resultCode: string | undefined): ChannelStatus | undefined {
  return lookup(transactionStatusMap, resultCode);
}
