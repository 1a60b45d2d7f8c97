import { escapeHtml, messagePageWith, pageLayout, type PageTheme } from '../shared/payer-page-layout.js';
import { beijingTime, yuanFromFen } from './protocol.js';
import type { SimTrade } from './store.js';

/**
 * The payer's side: the page behind the QR code and the page-pay redirect.
 * Plain HTML forms, so a person, `fetch` or headless Chromium can press the
 * buttons. The only buttons are "Pay 支付" and "Cancel 取消", and no other text
 * on the cashier page contains "Pay" or "支付", so a browser test can find each
 * by its text (getByRole('button', { name: 'Pay' }), text=支付).
 */

/** The channel's colours in the shared frame (../shared/payer-page-layout.ts). */
const theme: PageTheme = { background: '#f5f7fa', accent: '#1677ff', mainWidthPx: 420 };

function layout(title: string, content: string): string {
  return pageLayout(theme, title, content);
}

function orderDetails(trade: SimTrade): string {
  return `<div class="amount" data-testid="amount">¥${escapeHtml(yuanFromFen(trade.totalFen))}</div>
<dl>
  <dt>商品 Item</dt><dd data-testid="subject">${escapeHtml(trade.subject)}</dd>
  <dt>订单号 Order</dt><dd data-testid="out-trade-no">${escapeHtml(trade.outTradeNo)}</dd>
</dl>`;
}

/** The cashier for a trade in any state: buttons while it waits, the outcome afterwards. */
export function cashierPage(trade: SimTrade, returnLink: string | undefined): string {
  const heading = '<h1>收银台 · Cashier (Fen simulator)</h1>';
  switch (trade.status) {
    case 'PRECREATED':
    case 'WAIT_BUYER_PAY':
      return layout('Alipay simulator', `${heading}${orderDetails(trade)}
<div class="actions">
  <form method="post" action="/alipay/cashier/${trade.payerToken}/pay"><button type="submit" class="primary">Pay 支付</button></form>
  <form method="post" action="/alipay/cashier/${trade.payerToken}/cancel"><button type="submit" class="secondary">Cancel 取消</button></form>
</div>`);
    case 'TRADE_SUCCESS':
    case 'TRADE_FINISHED': {
      const paidAt = trade.paidAt ? beijingTime(trade.paidAt) : '';
      const back = returnLink ? `<p><a href="${escapeHtml(returnLink)}" data-testid="return-link">返回商户 Back to the merchant</a></p>` : '';
      return layout('Alipay simulator', `${heading}${orderDetails(trade)}
<p class="notice" data-testid="status">已付款 · Paid ${escapeHtml(paidAt)}</p>${back}`);
    }
    case 'TRADE_CLOSED':
      return layout('Alipay simulator', `${heading}${orderDetails(trade)}
<p class="notice" data-testid="status">交易已关闭 · Closed</p>`);
  }
}

export function messagePage(title: string, message: string): string {
  return messagePageWith(theme, title, message);
}
