import { assert } from './assert.js';
import { fail, ok, type Result } from './errors.js';

/**
 * Money is an integer count of minor units (fen for CNY) with its currency.
 * Decimal strings exist only at the edges (channel wire formats, bill files),
 * and basis-point maths rounds explicitly.
 */
export const currencies = {
  CNY: { minorDigits: 2 },
  HKD: { minorDigits: 2 },
  USD: { minorDigits: 2 },
  EUR: { minorDigits: 2 },
  JPY: { minorDigits: 0 },
} as const;

export type Currency = keyof typeof currencies;
export const currencyCodes = Object.keys(currencies) as Currency[];

export interface Money {
  readonly amount: bigint;
  readonly currency: Currency;
}

export function isCurrency(value: string): value is Currency {
  return Object.hasOwn(currencies, value);
}

export function money(amount: bigint, currency: Currency): Money {
  return { amount, currency };
}

function sameCurrency(left: Money, right: Money): void {
  assert(left.currency === right.currency, `currency mismatch: ${left.currency} vs ${right.currency}`);
}

export function addMoney(left: Money, right: Money): Money {
  sameCurrency(left, right);
  return money(left.amount + right.amount, left.currency);
}

export function subtractMoney(left: Money, right: Money): Money {
  sameCurrency(left, right);
  return money(left.amount - right.amount, left.currency);
}

export type Rounding = 'half_up' | 'down' | 'up';

/** Divides a non-negative numerator by a positive denominator with the named rounding. */
export function divideRounded(numerator: bigint, denominator: bigint, rounding: Rounding): bigint {
  assert(denominator > 0n, 'denominator must be positive');
  assert(numerator >= 0n, 'numerator must not be negative');
  const quotient = numerator / denominator;
  const remainder = numerator % denominator;
  if (remainder === 0n) return quotient;
  switch (rounding) {
    case 'down':
      return quotient;
    case 'up':
      return quotient + 1n;
    case 'half_up':
      return remainder * 2n >= denominator ? quotient + 1n : quotient;
  }
}

export const basisPointsPerWhole = 10_000n;

/** amount × rate / 10000, rounded as named (half-up by default, as DESIGN.md §3.1 says). */
export function applyBasisPoints(amount: bigint, rateBasisPoints: bigint, rounding: Rounding = 'half_up'): bigint {
  assert(rateBasisPoints >= 0n, 'rate must not be negative');
  return divideRounded(amount * rateBasisPoints, basisPointsPerWhole, rounding);
}

export interface FeePlan {
  rateBasisPoints: bigint;
  minimumMinor: bigint;
  maximumMinor: bigint | null;
}

/** The fee for one amount under a plan: the rate, then the floor and the cap, never more than the amount. */
export function feeFor(amount: bigint, plan: FeePlan): bigint {
  let fee = applyBasisPoints(amount, plan.rateBasisPoints);
  if (fee < plan.minimumMinor) fee = plan.minimumMinor;
  if (plan.maximumMinor !== null && fee > plan.maximumMinor) fee = plan.maximumMinor;
  return fee > amount ? amount : fee;
}

/** The share of `whole` that `part / total` stands for, rounded half-up. */
export function prorate(options: { whole: bigint; part: bigint; total: bigint }): bigint {
  assert(options.total > 0n, 'total must be positive');
  assert(options.part >= 0n && options.part <= options.total, 'part must lie within total');
  return divideRounded(options.whole * options.part, options.total, 'half_up');
}

export type DecimalParseFailure = 'invalid_decimal' | 'too_many_decimals' | 'negative_not_allowed';

/**
 * Parses an exact decimal string ("12.34", "-0.5", "1,234.00" is refused) into
 * minor units. Extra fraction digits are accepted only when they are zeros,
 * so "0.10000" (WeChat Pay's five-place fee column) parses but "0.12345" does not
 * unless the caller asks for a wider scale.
 */
export function parseDecimalToMinor(
  text: string,
  currency: Currency,
  options: { allowNegative?: boolean } = {},
): Result<bigint, DecimalParseFailure> {
  const match = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) return fail('invalid_decimal', `not a decimal number: ${JSON.stringify(text)}`);
  const [, sign = '', whole = '0', fraction = ''] = match;
  if (sign === '-' && !options.allowNegative) return fail('negative_not_allowed', `negative amount: ${text}`);
  const digits = currencies[currency].minorDigits;
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > digits) return fail('too_many_decimals', `${text} has more than ${digits} decimal places`);
  const scaled = BigInt(whole) * 10n ** BigInt(digits) + BigInt(significant.padEnd(digits, '0') || '0');
  return ok(sign === '-' ? -scaled : scaled);
}

/** Formats minor units as a plain decimal string ("12.34"), the way channels expect it. */
export function formatMinorAsDecimal(amount: bigint, currency: Currency): string {
  const digits = currencies[currency].minorDigits;
  const negative = amount < 0n;
  const absolute = negative ? -amount : amount;
  if (digits === 0) return `${negative ? '-' : ''}${absolute}`;
  const scale = 10n ** BigInt(digits);
  const fraction = (absolute % scale).toString().padStart(digits, '0');
  return `${negative ? '-' : ''}${absolute / scale}.${fraction}`;
}

/** JSON carries amounts as integers; every amount Fen accepts is far below 2^53. */
export function minorToJsonNumber(amount: bigint): number {
  assert(amount <= BigInt(Number.MAX_SAFE_INTEGER) && amount >= BigInt(Number.MIN_SAFE_INTEGER), 'amount exceeds safe JSON range');
  return Number(amount);
}
