import { beijingRfc3339, yuanText } from './protocol.js';
import type { SimTrade } from './store.js';

/**
 * The payer's side: the page behind the code_url (a Native order's QR code),
 * the h5_url and a JSAPI order's pay call. Plain HTML forms, so a person,
 * `fetch` or headless Chromium can press the buttons. The only buttons are
 * "Pay 支付" and "Cancel 取消", and no other text on the page contains "Pay"
 * or "支付", so a test can find each by its text.
 */

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function layout(title: string, content: string): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; background: #ededed; margin: 0; }
  main { max-width: 420px; margin: 48px auto; background: #fff; border-radius: 12px; padding: 28px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
  h1 { font-size: 18px; color: #07c160; margin: 0 0 20px; }
  .amount { font-size: 36px; font-weight: 600; margin: 8px 0 20px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 12px; color: #555; font-size: 14px; }
  dt { color: #999; }
  .actions { display: flex; gap: 12px; margin-top: 24px; }
  .actions form { flex: 1; }
  button { width: 100%; padding: 12px; font-size: 16px; border-radius: 8px; border: 1px solid #07c160; cursor: pointer; }
  .primary { background: #07c160; color: #fff; }
  .secondary { background: #fff; color: #07c160; }
  .notice { font-size: 15px; color: #333; }
</style>
</head>
<body><main>${content}</main></body>
</html>`;
}

function orderDetails(trade: SimTrade): string {
  return `<div class="amount" data-testid="amount">¥${escapeHtml(yuanText(trade.totalFen))}</div>
<dl>
  <dt>商品 Item</dt><dd data-testid="subject">${escapeHtml(trade.description)}</dd>
  <dt>订单号 Order</dt><dd data-testid="out-trade-no">${escapeHtml(trade.outTradeNo)}</dd>
</dl>`;
}

export interface PayerPageOptions {
  /** The payer pressed Cancel: WeChat Pay leaves the order open, so the page says so and still offers to pay. */
  cancelled: boolean;
  /** An H5 order's redirect_url: where the payer goes back to the merchant. */
  redirectUrl: string | undefined;
}

function withRedirect(path: string, redirectUrl: string | undefined): string {
  return redirectUrl ? `${path}?redirect_url=${encodeURIComponent(redirectUrl)}` : path;
}

/** The page for an order in any state: buttons while it is unpaid, the outcome afterwards. */
export function payerPage(trade: SimTrade, options: PayerPageOptions): string {
  const heading = '<h1>微信收银台 · WeChat cashier (Fen simulator)</h1>';
  const back = options.redirectUrl ? `<p><a href="${escapeHtml(options.redirectUrl)}" data-testid="return-link">返回商户 Back to the merchant</a></p>` : '';
  switch (trade.tradeState) {
    case 'NOTPAY': {
      const notice = options.cancelled ? '<p class="notice" data-testid="status">已取消，订单仍可付款 · Cancelled; the order stays open</p>' : '';
      const action = (button: string) => escapeHtml(withRedirect(`/wechatpay/pay/${trade.payerToken}/${button}`, options.redirectUrl));
      return layout('WeChat cashier simulator', `${heading}${orderDetails(trade)}${notice}
<div class="actions">
  <form method="post" action="${action('pay')}"><button type="submit" class="primary">Pay 支付</button></form>
  <form method="post" action="${action('cancel')}"><button type="submit" class="secondary">Cancel 取消</button></form>
</div>${back}`);
    }
    case 'SUCCESS':
    case 'REFUND': {
      const paidAt = trade.paidAt ? beijingRfc3339(trade.paidAt) : '';
      return layout('WeChat cashier simulator', `${heading}${orderDetails(trade)}
<p class="notice" data-testid="status">已付款 · Paid ${escapeHtml(paidAt)}</p>${back}`);
    }
    case 'CLOSED':
      return layout('WeChat cashier simulator', `${heading}${orderDetails(trade)}
<p class="notice" data-testid="status">订单已关闭 · Closed</p>${back}`);
  }
}

export function messagePage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="notice">${escapeHtml(message)}</p>`);
}
