/**
 * The cashier's words in Chinese and English. Every string a payer reads lives
 * here, so both languages always carry the same set of messages (the type
 * checker refuses a key that one language lacks).
 */
export const languages = ['zh', 'en'] as const;
export type Language = (typeof languages)[number];

/** Chinese first: the payers of a Chinese payment platform read Chinese unless they ask otherwise. */
export const defaultLanguage: Language = 'zh';

export const htmlLanguageTags: Record<Language, string> = { zh: 'zh-CN', en: 'en' };

/** The methods a payer can pick on the cashier, in the order they are offered. */
export const cashierMethods = ['alipay_qr', 'alipay_page', 'wechat_native', 'wechat_h5', 'unionpay_web'] as const;
export type CashierMethod = (typeof cashierMethods)[number];

export function isCashierMethod(value: string): value is CashierMethod {
  return (cashierMethods as readonly string[]).includes(value);
}

export interface CashierStrings {
  pageTitle: string;
  timeLeft: string;
  paymentReference: string;
  chooseMethod: string;
  noMethods: string;
  openInPayerApp: string;
  qrLabel: string;
  scanWith: Record<CashierMethod, string>;
  continueTo: Record<CashierMethod, string>;
  methodNames: Record<CashierMethod, string>;
  genericScan: string;
  genericContinue: string;
  formRedirecting: string;
  formContinue: string;
  waitingForChannel: string;
  paid: string;
  paidDetail: string;
  returning: string;
  backToMerchant: string;
  closed: string;
  closedDetail: string;
  failed: string;
  failedDetail: string;
  expired: string;
  expiredDetail: string;
  otherLanguage: string;
  notFoundTitle: string;
  notFoundDetail: string;
  methodUnavailableTitle: string;
  methodUnavailableDetail: string;
  requestRefusedTitle: string;
  requestRefusedDetail: string;
  backToCashier: string;
}

const zh: CashierStrings = {
  pageTitle: '收银台',
  timeLeft: '剩余支付时间',
  paymentReference: '订单',
  chooseMethod: '请选择支付方式',
  noMethods: '暂无可用的支付方式，请联系商户。',
  openInPayerApp: '在付款 App 中打开',
  qrLabel: '付款二维码',
  scanWith: {
    alipay_qr: '请打开支付宝扫一扫',
    alipay_page: '请打开支付宝扫一扫',
    wechat_native: '请打开微信扫一扫',
    wechat_h5: '请打开微信扫一扫',
    unionpay_web: '请使用云闪付扫一扫',
  },
  continueTo: {
    alipay_qr: '前往支付宝付款',
    alipay_page: '前往支付宝付款',
    wechat_native: '前往微信支付',
    wechat_h5: '前往微信支付',
    unionpay_web: '前往银联付款',
  },
  methodNames: {
    alipay_qr: '支付宝扫码',
    alipay_page: '支付宝网页支付',
    wechat_native: '微信扫码',
    wechat_h5: '微信 H5 支付',
    unionpay_web: '银联在线支付',
  },
  genericScan: '请使用付款 App 扫码',
  genericContinue: '前往付款',
  formRedirecting: '正在跳转到付款页面…',
  formContinue: '继续',
  waitingForChannel: '正在等待支付渠道响应，请稍候。',
  paid: '支付成功',
  paidDetail: '商户已收到您的付款。',
  returning: '正在返回商户…',
  backToMerchant: '返回商户',
  closed: '已关闭',
  closedDetail: '这笔订单已关闭，无法再付款。',
  failed: '支付失败',
  failedDetail: '这笔订单未能付款，请返回商户重新下单。',
  expired: '已过期',
  expiredDetail: '这笔订单已超过支付时间，请返回商户重新下单。',
  otherLanguage: 'English',
  notFoundTitle: '找不到这笔订单',
  notFoundDetail: '链接可能有误，请返回商户重新打开付款页面。',
  methodUnavailableTitle: '暂时无法使用该支付方式',
  methodUnavailableDetail: '请返回收银台选择其他支付方式。',
  requestRefusedTitle: '请求无效',
  requestRefusedDetail: '请返回收银台重试。',
  backToCashier: '返回收银台',
};

const en: CashierStrings = {
  pageTitle: 'Checkout',
  timeLeft: 'Time left to pay',
  paymentReference: 'Payment',
  chooseMethod: 'Choose how to pay',
  noMethods: 'No payment method is available right now; please contact the merchant.',
  openInPayerApp: 'Open in the payer app',
  qrLabel: 'Payment QR code',
  scanWith: {
    alipay_qr: 'Scan with Alipay',
    alipay_page: 'Scan with Alipay',
    wechat_native: 'Scan with WeChat',
    wechat_h5: 'Scan with WeChat',
    unionpay_web: 'Scan with UnionPay QuickPass',
  },
  continueTo: {
    alipay_qr: 'Continue to Alipay',
    alipay_page: 'Continue to Alipay',
    wechat_native: 'Continue to WeChat Pay',
    wechat_h5: 'Continue to WeChat Pay',
    unionpay_web: 'Continue to UnionPay',
  },
  methodNames: {
    alipay_qr: 'Alipay QR',
    alipay_page: 'Alipay web',
    wechat_native: 'WeChat Pay QR',
    wechat_h5: 'WeChat Pay mobile web',
    unionpay_web: 'UnionPay online',
  },
  genericScan: 'Scan with your payment app',
  genericContinue: 'Continue to pay',
  formRedirecting: 'Taking you to the payment page…',
  formContinue: 'Continue',
  waitingForChannel: 'Waiting for the payment channel to answer; please wait a moment.',
  paid: 'Paid',
  paidDetail: 'The merchant has received your payment.',
  returning: 'Returning to the merchant…',
  backToMerchant: 'Back to the merchant',
  closed: 'Closed',
  closedDetail: 'This order is closed and can no longer be paid.',
  failed: 'Payment failed',
  failedDetail: 'This order could not be paid; please go back to the merchant and order again.',
  expired: 'Expired',
  expiredDetail: 'The time to pay this order has run out; please go back to the merchant and order again.',
  otherLanguage: '中文',
  notFoundTitle: 'Payment not found',
  notFoundDetail: 'The link may be wrong; please open the payment page from the merchant again.',
  methodUnavailableTitle: 'This payment method is unavailable right now',
  methodUnavailableDetail: 'Please go back to the checkout and choose another method.',
  requestRefusedTitle: 'Invalid request',
  requestRefusedDetail: 'Please go back to the checkout and try again.',
  backToCashier: 'Back to the checkout',
};

const catalogue: Record<Language, CashierStrings> = { zh, en };

export function stringsFor(language: Language): CashierStrings {
  return catalogue[language];
}

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (languages as readonly string[]).includes(value);
}

/** Accept-Language headers longer than this are not worth parsing: real browsers send a few dozen bytes. */
const acceptLanguageLengthMax = 1024;

/**
 * The payer's language from an Accept-Language header: the highest-weighted
 * tag that is Chinese or English wins, ties going to the earlier tag; anything
 * else (or a header that cannot be read) gives the default.
 */
export function languageFromAcceptLanguage(header: string | undefined): Language {
  if (!header || header.length > acceptLanguageLengthMax) return defaultLanguage;
  let best: { language: Language; weight: number } | undefined;
  for (const part of header.split(',')) {
    const [tag = '', ...parameters] = part.trim().toLowerCase().split(';');
    const quality = parameters.map((parameter) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(parameter)?.[1]).find((value) => value !== undefined);
    const weight = quality === undefined ? 1 : Number(quality);
    const primary = tag.trim().split('-')[0];
    if ((primary === 'zh' || primary === 'en') && weight > 0 && (!best || weight > best.weight)) best = { language: primary, weight };
  }
  return best?.language ?? defaultLanguage;
}

/** `?lang=` wins, then the browser's Accept-Language, then Chinese. */
export function chooseLanguage(queryLanguage: Language | undefined, acceptLanguage: string | undefined): Language {
  return queryLanguage ?? languageFromAcceptLanguage(acceptLanguage);
}
