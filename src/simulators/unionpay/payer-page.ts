import { escapeHtml, messagePageWith, pageLayout, type PageTheme } from '../shared/payer-page-layout.js';
import { yuanText } from './protocol.js';
import type { SimTransaction } from './store.js';

/**
 * The payer's side: the page the consumption form lands on. Plain HTML forms,
 * so a person, `fetch` or headless Chromium can press the buttons. While the
 * order waits, the only buttons are "Pay 支付" and "Cancel 取消", and no other
 * text on the page contains "Pay" or "支付", so a test can find each by its
 * text. Once paid, the page posts UnionPay's signed front notification to the
 * merchant's frontUrl by itself, with a button for browsers without scripts.
 */

/** The channel's colours in the shared frame (../shared/payer-page-layout.ts). */
const theme: PageTheme = { background: '#f3f5f8', accent: '#00508e', mainWidthPx: 440, mainExtra: 'border-top: 6px solid #d7000f;', extraRules: 'dd { margin: 0; word-break: break-all; }' };

function layout(title: string, content: string): string {
  return pageLayout(theme, title, content);
}

function orderDetails(transaction: SimTransaction): string {
  return `<div class="amount" data-testid="amount">¥${escapeHtml(yuanText(transaction.txnFen))}</div>
<dl>
  <dt>商品 Item</dt><dd data-testid="subject">${escapeHtml(transaction.commodityName ?? '')}</dd>
  <dt>订单号 Order</dt><dd data-testid="order-id">${escapeHtml(transaction.orderId)}</dd>
  <dt>商户 Merchant</dt><dd data-testid="mer-id">${escapeHtml(transaction.merId)}</dd>
</dl>`;
}

const heading = '<h1>银联收银台 · UNIONPAY Checkout (Fen simulator)</h1>';
const pageTitle = 'UNIONPAY simulator';

/** The form that carries the signed front notification back to the merchant's frontUrl. */
function returnForm(frontUrl: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  return `<form id="front-notification" method="post" action="${escapeHtml(frontUrl)}" data-testid="return-form">
${inputs}
<button type="submit" class="secondary">返回商户 Back to the merchant</button>
</form>
<script>setTimeout(function () { document.getElementById('front-notification').submit(); }, 1500);</script>`;
}

/** The payer page for an order in any state: buttons while it waits, the outcome afterwards. */
export function payerPage(transaction: SimTransaction, frontNotification: Record<string, string> | undefined): string {
  switch (transaction.status) {
    case 'waiting':
      return layout(pageTitle, `${heading}${orderDetails(transaction)}
<div class="actions">
  <form method="post" action="/unionpay/pay/${transaction.payerToken}/pay"><button type="submit" class="primary">Pay 支付</button></form>
  <form method="post" action="/unionpay/pay/${transaction.payerToken}/cancel"><button type="submit" class="secondary">Cancel 取消</button></form>
</div>`);
    case 'succeeded': {
      const back = transaction.frontUrl && frontNotification ? returnForm(transaction.frontUrl, frontNotification) : '';
      return layout(pageTitle, `${heading}${orderDetails(transaction)}
<p class="notice" data-testid="status">交易成功 · Paid</p>${back}`);
    }
    case 'failed':
      return layout(pageTitle, `${heading}${orderDetails(transaction)}
<p class="notice" data-testid="status">交易失败 · Not paid (${escapeHtml(transaction.resultMessage ?? '')})</p>`);
  }
}

export function messagePage(title: string, message: string): string {
  return messagePageWith(theme, title, message);
}
