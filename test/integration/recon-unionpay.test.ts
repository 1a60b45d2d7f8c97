import { orderIdFor } from '../../src/channels/unionpay/transformers.js';
import { describeReconDay } from '../helpers/recon-day.js';

/**
 * Issue 5's day of business on the UnionPay simulator (test/helpers/recon-day.ts).
 * UnionPay's switches name the order by its orderId, which is Fen's payment
 * id without the underscore (the connector's orderIdFor), and write amounts
 * as txnAmt does: a string of fen.
 */
describeReconDay({
  channel: 'unionpay',
  title: 'UnionPay',
  method: 'unionpay_web',
  order: { field: 'orderId', of: (paymentId) => orderIdFor(paymentId)! },
  amounts: { amountField: 'txnAmt', feeField: 'fee', write: (fen) => fen.toString() },
  inventedOrder: /^simextra\d+$/,
});
