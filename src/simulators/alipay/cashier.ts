import { beijingTime, yuanFromFen } from './protocol.js';
import type { SimTrade } from './store.js';

/**
 * The payer's side: the page behind the QR code and the page-pay redirect.
 * Plain HTML forms, so a person, `fetch` or headless Chromium can press the
 * buttons. The only buttons are "Pay 支付" and "Cancel 取消", and no other text
 * on the cashier page contains "Pay" or "支付", so a browser test can find each
 * by its text (getByRole('button', { name: 'Pay' }), text=支付).
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
  body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; background: #f5f7fa; margin: 0; }
  main { max-width: 420px; margin: 48px auto; background: #fff; border-radius: 12px; padding: 28px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
  h1 { font-size: 18px; color: #1677ff; margin: 0 0 20px; }
  .amount { font-size: 36px; font-weight: 600; margin: 8px 0 20px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 12px; color: #555; font-size: 14px; }
  dt { color: #999; }
  .actions { display: flex; gap: 12px; margin-top: 24px; }
  .actions form { flex: 1; }
  button { width: 100%; padding: 12px; font-size: 16px; border-radius: 8px; border: 1px solid #1677ff; cursor: pointer; }
  .primary { background: #1677ff; color: #fff; }
  .secondary { background: #fff; color: #1677ff; }
  .notice { font-size: 15px; color: #333; }
</style>
</head>
<body><main>${content}</main></body>
</html>`;
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
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="notice">${escapeHtml(message)}</p>`);
}
