import { describe, expect, it } from 'vitest';
import {
  contentSecurityPolicy,
  escapeHtml,
  formatAmount,
  formatRemaining,
  formTargetsOf,
  qrCodeSvg,
  renderCashierPage,
  renderMessagePage,
  safePayerAppUrl,
  type CashierView,
} from '../../src/cashier/cashier.page.js';
import { cashierStateOf, cashierViewOf, payerStepOf, type CashierFacts } from '../../src/cashier/cashier.service.js';

/**
 * The cashier page is a pure function of its view model, so every state, every
 * kind of payer step and both languages are checked here without a server.
 */
const paymentId = 'pay_01jz0000000000000000000000';

function view(overrides: Partial<CashierView> = {}): CashierView {
  return {
    language: 'zh',
    nonce: 'bm9uY2Utb2YtdGhlLXRlc3Q=',
    paymentId,
    merchantName: '测试商户',
    subject: 'Green tea 绿茶',
    amount: 1234n,
    currency: 'CNY',
    state: 'open',
    remainingSeconds: 899,
    returnUrl: null,
    step: { kind: 'qr_code', method: 'alipay_qr', qrCode: 'http://127.0.0.1:9000/alipay/qr/token123' },
    ...overrides,
  };
}

/** The visible panel of a rendered page: the one without `hidden`. */
function visiblePanels(html: string): string[] {
  return [...html.matchAll(/data-state-panel="(\w+)"(?: data-testid="[^"]*")?( hidden)?>/g)].filter((match) => !match[2]).map((match) => match[1] ?? '');
}

describe('cashier page rendering', () => {
  it('shows the merchant, the subject, the amount and the countdown, in Chinese by default', () => {
    const html = renderCashierPage(view());
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">');
    expect(html).toContain('>测试商户<');
    expect(html).toContain('>Green tea 绿茶<');
    expect(html).toContain('>¥12.34<');
    expect(html).toContain('<time id="countdown" data-testid="countdown">14:59</time>');
    expect(html).toContain('收银台');
    expect(html).toContain('href="?lang=en"');
    expect(visiblePanels(html)).toEqual(['open']);
  });

  it('speaks English when asked', () => {
    const html = renderCashierPage(view({ language: 'en' }));
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('Checkout');
    expect(html).toContain('Scan with Alipay');
    expect(html).toContain('Open in the payer app');
    expect(html).toContain('href="?lang=zh"');
    expect(html).not.toMatch(/支付成功|请打开支付宝/);
  });

  it('loads nothing from elsewhere and runs only its nonce’d style and script', () => {
    const html = renderCashierPage(view());
    expect(html).not.toMatch(/<(?:link|img|iframe)\b|src=|https?:\/\/(?!127\.0\.0\.1:9000|www\.w3\.org)/);
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script nonce="bm9uY2Utb2YtdGhlLXRlc3Q=">']);
    expect(html.match(/<style\b[^>]*>/g)).toEqual(['<style nonce="bm9uY2Utb2YtdGhlLXRlc3Q=">']);
    expect(html).not.toMatch(/ style="|\son[a-z]+=/);
    const policy = contentSecurityPolicy('abc');
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'nonce-abc'");
    expect(policy).toContain("style-src 'nonce-abc'");
    expect(policy).toContain("form-action 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toMatch(/unsafe/);
  });

  it('escapes every value it prints', () => {
    const hostile = `<script>alert("x")</script>&'`;
    const html = renderCashierPage(
      view({ merchantName: hostile, subject: hostile, returnUrl: `https://shop.test/back?a=1&b="><script>`, state: 'paid', step: { kind: 'waiting' } }),
    );
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('"><script>');
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;&#39;');
    expect(html.match(/<script\b/g)).toHaveLength(1);
    expect(escapeHtml(`a<b>"c"&'d'`)).toBe('a&#60;b&#62;&#34;c&#34;&#38;&#39;d&#39;');
  });

  it('draws the QR code as inline SVG beside a link to the same URL', () => {
    const qrCode = 'http://127.0.0.1:9000/alipay/qr/token123?a=1&b=2';
    const html = renderCashierPage(view({ step: { kind: 'qr_code', method: 'alipay_qr', qrCode } }));
    expect(html).toMatch(/<figure class="qr" data-testid="qr"><svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1"[^>]*role="img" aria-label="付款二维码">/);
    expect(html).toContain('href="http://127.0.0.1:9000/alipay/qr/token123?a=1&#38;b=2"');
    expect(html).toContain('请打开支付宝扫一扫');
    const svg = qrCodeSvg(qrCode, 'QR');
    expect(svg).toBeDefined();
    expect(qrCodeSvg(qrCode, 'QR')).toBe(svg);
    expect(qrCodeSvg('x'.repeat(5000), 'QR')).toBeUndefined();
  });

  it('offers a WeChat QR link in the payer app’s own scheme but never a script URL', () => {
    const wechat = renderCashierPage(view({ step: { kind: 'qr_code', method: 'wechat_native', qrCode: 'weixin://wxpay/bizpayurl?pr=abc' } }));
    expect(wechat).toContain('href="weixin://wxpay/bizpayurl?pr=abc"');
    expect(wechat).toContain('请打开微信扫一扫');
    const hostile = renderCashierPage(view({ step: { kind: 'qr_code', method: 'alipay_qr', qrCode: 'javascript:alert(1)' } }));
    expect(hostile).not.toContain('javascript:');
    expect(safePayerAppUrl('data:text/html,hi')).toBeUndefined();
  });

  it('sends a page-pay payer to the pay URL with one button', () => {
    const payUrl = 'https://openapi.alipay.com/gateway.do?method=alipay.trade.page.pay&sign=a+b%2F';
    const html = renderCashierPage(view({ language: 'en', step: { kind: 'redirect', method: 'alipay_page', payUrl } }));
    expect(html).toContain(`<a class="button primary" data-testid="pay-link" rel="noreferrer" href="${escapeHtml(payUrl)}">Continue to Alipay</a>`);
    const wechat = renderCashierPage(view({ step: { kind: 'redirect', method: 'wechat_h5', payUrl: 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=1' } }));
    expect(wechat).toContain('前往微信支付');
    expect(renderCashierPage(view({ step: { kind: 'redirect', method: 'alipay_page', payUrl: 'javascript:alert(1)' } }))).not.toContain('javascript:');
  });

  it('holds a channel form with escaped fields and lets the CSP post only there', () => {
    const formView = view({
      step: { kind: 'form', method: 'unionpay_web', actionUrl: 'https://gateway.95516.com/gateway/api/frontTransReq.do', fields: [{ name: 'txnAmt', value: '1234' }, { name: 'signature', value: 'a"b<c' }] },
    });
    const html = renderCashierPage(formView);
    expect(html).toContain('<form id="channel-form" method="post" action="https://gateway.95516.com/gateway/api/frontTransReq.do">');
    expect(html).toContain('<input type="hidden" name="signature" value="a&#34;b&#60;c">');
    expect(html).toContain('正在跳转到付款页面');
    expect(formTargetsOf(formView)).toEqual(['https://gateway.95516.com']);
    expect(contentSecurityPolicy('n', formTargetsOf(formView))).toContain("form-action 'self' https://gateway.95516.com");
    expect(formTargetsOf(view())).toEqual([]);
  });

  it('lets the payer choose among the methods on offer with one form posting to Fen', () => {
    const html = renderCashierPage(view({ language: 'en', step: { kind: 'choose', methods: ['alipay_qr', 'alipay_page', 'wechat_native'] } }));
    expect(html).toContain(`<form class="methods" method="post" action="/pay/${paymentId}/method"><input type="hidden" name="lang" value="en">`);
    expect(html.match(/<button class="button secondary" type="submit" name="method" value="(\w+)">([^<]+)<\/button>/g)).toEqual([
      '<button class="button secondary" type="submit" name="method" value="alipay_qr">Alipay QR</button>',
      '<button class="button secondary" type="submit" name="method" value="alipay_page">Alipay web</button>',
      '<button class="button secondary" type="submit" name="method" value="wechat_native">WeChat Pay QR</button>',
    ]);
    expect(html).not.toContain('value="cashier"');
    expect(renderCashierPage(view({ step: { kind: 'choose', methods: [] } }))).toContain('暂无可用的支付方式');
  });

  it('shows each outcome as its own panel, without the payer step', () => {
    for (const [state, zh, en] of [
      ['paid', '支付成功', 'Paid'],
      ['closed', '已关闭', 'Closed'],
      ['failed', '支付失败', 'Payment failed'],
      ['expired', '已过期', 'Expired'],
    ] as const) {
      const chinese = renderCashierPage(view({ state }));
      expect(visiblePanels(chinese)).toEqual([state]);
      expect(chinese).toContain(`<h1>${zh}</h1>`);
      expect(chinese).not.toContain('data-testid="qr"');
      expect(chinese).toContain(`data-state="${state}"`);
      expect(renderCashierPage(view({ state, language: 'en' }))).toContain(`<h1>${en}</h1>`);
    }
  });

  it('offers the way back to the merchant once paid, and only to a web address', () => {
    const html = renderCashierPage(view({ state: 'paid', returnUrl: 'https://shop.test/orders/1' }));
    expect(html).toContain('data-return-url="https://shop.test/orders/1"');
    expect(html).toContain('<a class="button secondary" data-testid="return-link" href="https://shop.test/orders/1">返回商户</a>');
    const hostile = renderCashierPage(view({ state: 'paid', returnUrl: 'javascript:alert(1)' }));
    expect(hostile).toContain('data-return-url=""');
    expect(hostile).not.toContain('javascript:');
  });

  it('renders a message page for a missing payment in either language', () => {
    const html = renderMessagePage({ language: 'en', nonce: 'n1', title: 'Payment not found', detail: 'The link may be wrong.', backHref: '/pay/x?lang=en' });
    expect(html).toContain('<h1>Payment not found</h1>');
    expect(html).toContain('href="/pay/x?lang=en"');
    expect(html).not.toContain('<script');
    expect(renderMessagePage({ language: 'zh', nonce: 'n1', title: '找不到这笔订单', detail: 'x' })).toContain('<html lang="zh-CN">');
  });
});

describe('cashier formatting', () => {
  it('formats amounts from minor units with the currency’s symbol', () => {
    expect(formatAmount(1234n, 'CNY')).toBe('¥12.34');
    expect(formatAmount(5n, 'CNY')).toBe('¥0.05');
    expect(formatAmount(100_000_000n, 'CNY')).toBe('¥1000000.00');
    expect(formatAmount(500n, 'JPY')).toBe('JP¥500');
    expect(formatAmount(1999n, 'USD')).toBe('US$19.99');
  });

  it('formats the countdown as mm:ss, or h:mm:ss from an hour up', () => {
    expect(formatRemaining(0)).toBe('00:00');
    expect(formatRemaining(59)).toBe('00:59');
    expect(formatRemaining(899)).toBe('14:59');
    expect(formatRemaining(3600)).toBe('1:00:00');
    expect(formatRemaining(86_399)).toBe('23:59:59');
    expect(formatRemaining(-5)).toBe('00:00');
  });
});

describe('cashier view model', () => {
  const now = new Date('2026-01-15T02:00:00.000Z');
  function facts(overrides: Partial<CashierFacts['payment']> = {}, availableMethods: CashierFacts['availableMethods'] = []): CashierFacts {
    return {
      merchantName: '测试商户',
      availableMethods,
      payment: {
        id: paymentId,
        app_id: 'app_01jz0000000000000000000000',
        merchant_id: 'mch_01jz0000000000000000000000',
        status: 'paying',
        amount: 1234n,
        currency: 'CNY',
        subject: 'Green tea',
        method: 'alipay_qr',
        channel_account_id: 'cha_01jz0000000000000000000000',
        qr_code: 'http://127.0.0.1:9000/alipay/qr/t',
        pay_url: null,
        payer_action: null,
        return_url: null,
        failure_code: null,
        expires_at: new Date(now.getTime() + 90_500),
        paid_at: null,
        ...overrides,
      },
    };
  }

  it('counts down by the server’s clock, rounding up so an open payment never reads 00:00', () => {
    const model = cashierViewOf(facts(), { now, language: 'zh', nonce: 'n' });
    expect(model.remainingSeconds).toBe(91);
    expect(model.state).toBe('open');
    expect(model.step).toEqual({ kind: 'qr_code', method: 'alipay_qr', qrCode: 'http://127.0.0.1:9000/alipay/qr/t' });
  });

  it('reads an open payment past its expiry, or one closed by expiry, as expired', () => {
    const past = new Date(now.getTime() - 1000);
    expect(cashierStateOf({ status: 'paying', failure_code: null, expires_at: past }, now)).toBe('expired');
    expect(cashierStateOf({ status: 'created', failure_code: null, expires_at: now }, now)).toBe('expired');
    expect(cashierStateOf({ status: 'closed', failure_code: 'expired', expires_at: past }, now)).toBe('expired');
    expect(cashierStateOf({ status: 'closed', failure_code: 'closed_by_merchant', expires_at: past }, now)).toBe('closed');
    expect(cashierStateOf({ status: 'succeeded', failure_code: null, expires_at: past }, now)).toBe('paid');
    expect(cashierStateOf({ status: 'failed', failure_code: 'channel_x', expires_at: past }, now)).toBe('failed');
    const expired = renderCashierPage(cashierViewOf(facts({ expires_at: past }), { now, language: 'en', nonce: 'n' }));
    expect(visiblePanels(expired)).toEqual(['expired']);
    expect(expired).toContain('data-remaining-seconds="0"');
  });

  it('derives the payer step from what the channel gave back', () => {
    expect(payerStepOf(facts({ qr_code: null, pay_url: 'https://pay.test/x', method: 'alipay_page' }))).toEqual({ kind: 'redirect', method: 'alipay_page', payUrl: 'https://pay.test/x' });
    expect(payerStepOf(facts({ qr_code: null, method: 'cashier', status: 'created', channel_account_id: null }, ['alipay_qr']))).toEqual({ kind: 'choose', methods: ['alipay_qr'] });
    expect(payerStepOf(facts({ qr_code: null, method: 'cashier', status: 'created' }))).toEqual({ kind: 'waiting' });
    expect(payerStepOf(facts({ qr_code: null }))).toEqual({ kind: 'waiting' });
  });
});
