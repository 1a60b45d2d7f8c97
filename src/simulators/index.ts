/**
 * Servers that speak the payment channels' real protocols (DESIGN.md §5), for
 * development, demos and tests; `fen sim` runs them as their own process.
 */
export * from './alipay/index.js';
