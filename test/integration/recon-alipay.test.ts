import { formatMinorAsDecimal } from '../../src/platform/money.js';
import { describeReconDay } from '../helpers/recon-day.js';

/**
 * Issue 5's day of business on the Alipay simulator (test/helpers/recon-day.ts).
 * Alipay's switches name the order by out_trade_no, which is Fen's payment id,
 * and write amounts in yuan, as Alipay does.
 */
describeReconDay({
  channel: 'alipay',
  title: 'Alipay',
  method: 'alipay_qr',
  order: { field: 'outTradeNo', of: (paymentId) => paymentId },
  amounts: { amountField: 'totalAmount', feeField: 'serviceFee', write: (fen) => formatMinorAsDecimal(fen, 'CNY') },
  inventedOrder: /^sim_extra_\d+$/,
});
