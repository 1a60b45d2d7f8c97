import { escapeHtml, messagePageWith, pageLayout, type PageTheme } from '../shared/payer-page-layout.js';
import { beijingRfc3339, yuanText } from './protocol.js';
import type { SimTrade } from './store.js';

/**
 * The payer's side: the page behind the code_url (a Native order's QR code),
 * the h5_url and a JSAPI order's pay call. Plain HTML forms, so a person,
 * `fetch` or headless Chromium can press the buttons. The only buttons are
 * "Pay 支付" and "Cancel 取消", and no other text on the page contains "Pay"
 * or "支付", so a test can find each by its text.
 */

/** The channel's colours in the shared frame (../shared/payer-page-layout.ts). */
const theme: PageTheme = { background: '#ededed', accent: '#07c160', mainWidthPx: 420 };

function layout(title: string, content: string): string {
  return pageLayout(theme, title, content);
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
  return messagePageWith(theme, title, message);
}
