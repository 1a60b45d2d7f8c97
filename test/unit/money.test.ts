import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionFailure } from '../../src/platform/assert.js';
import {
  addMoney,
  applyBasisPoints,
  basisPointsPerWhole,
  currencies,
  currencyCodes,
  divideRounded,
  feeFor,
  formatMinorAsDecimal,
  minorToJsonNumber,
  money,
  parseDecimalToMinor,
  prorate,
  type Currency,
} from '../../src/platform/money.js';

/**
 * Properties of the money primitives, each checked against an independent
 * statement of the rule (exact rational arithmetic, not the code's own steps).
 */
const currency = fc.constantFrom<Currency>(...currencyCodes);
const minor = fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n });
const nonNegative = fc.bigInt({ min: 0n, max: 10n ** 13n });
const rate = fc.bigInt({ min: 0n, max: basisPointsPerWhole });

describe('decimal strings', () => {
  it('parse what they format, for every amount and currency', () => {
    fc.assert(
      fc.property(minor, currency, (amount, code) => {
        expect(parseDecimalToMinor(formatMinorAsDecimal(amount, code), code, { allowNegative: true })).toEqual({ ok: true, value: amount });
      }),
    );
  });

  it('format with exactly the currency\'s minor digits', () => {
    fc.assert(
      fc.property(minor, currency, (amount, code) => {
        const digits = currencies[code].minorDigits;
        expect(formatMinorAsDecimal(amount, code)).toMatch(digits === 0 ? /^-?\d+$/ : new RegExp(`^-?\\d+\\.\\d{${digits}}$`));
      }),
    );
  });

  it('accept trailing zeros beyond the minor digits and refuse anything else there', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.stringMatching(/^\d{0,2}$/), fc.nat({ max: 4 }), fc.integer({ min: 1, max: 9 }), (whole, fraction, zeros, extra) => {
        const text = `${whole}.${fraction.padEnd(2, '0')}${'0'.repeat(zeros)}`;
        const expected = whole * 100n + BigInt(fraction.padEnd(2, '0'));
        expect(parseDecimalToMinor(text, 'CNY')).toEqual({ ok: true, value: expected });
        expect(parseDecimalToMinor(`${text}${extra}`, 'CNY')).toMatchObject({ ok: false, code: 'too_many_decimals' });
        expect(parseDecimalToMinor(`${whole}.${extra}`, 'JPY')).toMatchObject({ ok: false, code: 'too_many_decimals' });
      }),
    );
  });

  it('refuse negatives unless asked, and anything that is not a plain decimal', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 12n), max: -1n }), currency, (amount, code) => {
        expect(parseDecimalToMinor(formatMinorAsDecimal(amount, code), code)).toMatchObject({ ok: false, code: 'negative_not_allowed' });
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }).filter((text) => !/^\s*[+-]?\d+(\.\d+)?\s*$/.test(text)), (text) => {
        expect(parseDecimalToMinor(text, 'CNY')).toMatchObject({ ok: false, code: 'invalid_decimal' });
      }),
    );
    for (const text of ['1,234.00', '1e3', '.5', '5.', '', '--1', '0x10', '１２']) expect(parseDecimalToMinor(text, 'CNY').ok).toBe(false);
  });
});

describe('basis points', () => {
  it('round half up, exactly as the rational amount × rate / 10000 says', () => {
    fc.assert(
      fc.property(nonNegative, rate, (amount, basisPoints) => {
        const numerator = amount * basisPoints;
        // half-up of n/d for n ≥ 0 is floor((2n + d) / 2d).
        expect(applyBasisPoints(amount, basisPoints)).toBe((2n * numerator + basisPointsPerWhole) / (2n * basisPointsPerWhole));
        expect(applyBasisPoints(amount, basisPoints, 'down')).toBe(numerator / basisPointsPerWhole);
        expect(applyBasisPoints(amount, basisPoints, 'up')).toBe((numerator + basisPointsPerWhole - 1n) / basisPointsPerWhole);
      }),
    );
  });

  it('stay within half a minor unit of the exact value, rounding exact halves up', () => {
    fc.assert(
      fc.property(nonNegative, rate, (amount, basisPoints) => {
        const error = applyBasisPoints(amount, basisPoints) * basisPointsPerWhole - amount * basisPoints;
        expect(error * 2n > -basisPointsPerWhole && error * 2n <= basisPointsPerWhole).toBe(true);
      }),
    );
    expect(applyBasisPoints(50n, 100n)).toBe(1n); // 0.5 → 1
    expect(applyBasisPoints(149n, 100n)).toBe(1n); // 1.49 → 1
    expect(applyBasisPoints(150n, 100n)).toBe(2n); // 1.5 → 2
  });

  it('refuse negative amounts, negative rates and non-positive denominators', () => {
    expect(() => applyBasisPoints(-1n, 10n)).toThrow(AssertionFailure);
    expect(() => applyBasisPoints(1n, -10n)).toThrow(AssertionFailure);
    expect(() => divideRounded(1n, 0n, 'half_up')).toThrow(AssertionFailure);
  });
});

describe('fees', () => {
  const plan = fc
    .tuple(rate, fc.bigInt({ min: 0n, max: 10_000n }), fc.option(fc.bigInt({ min: 0n, max: 100_000n }), { nil: null }))
    .map(([rateBasisPoints, minimumMinor, extra]) => ({ rateBasisPoints, minimumMinor, maximumMinor: extra === null ? null : minimumMinor + extra }));

  it('respect the floor, the cap and the amount, and follow the rate in between', () => {
    fc.assert(
      fc.property(nonNegative, plan, (amount, feePlan) => {
        const fee = feeFor(amount, feePlan);
        const byRate = applyBasisPoints(amount, feePlan.rateBasisPoints);
        expect(fee >= 0n && fee <= amount).toBe(true);
        if (amount >= feePlan.minimumMinor) expect(fee >= feePlan.minimumMinor).toBe(true);
        if (feePlan.maximumMinor !== null) expect(fee <= feePlan.maximumMinor).toBe(true);
        const withinBounds = byRate >= feePlan.minimumMinor && (feePlan.maximumMinor === null || byRate <= feePlan.maximumMinor);
        if (withinBounds) expect(fee).toBe(byRate);
      }),
    );
  });

  it('never fall when the amount grows', () => {
    fc.assert(
      fc.property(nonNegative, nonNegative, plan, (first, second, feePlan) => {
        const [smaller, larger] = first <= second ? [first, second] : [second, first];
        expect(feeFor(smaller, feePlan) <= feeFor(larger, feePlan)).toBe(true);
      }),
    );
  });
});

describe('prorate', () => {
  const split = fc
    .tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.array(fc.bigInt({ min: 0n, max: 10n ** 9n }), { minLength: 1, maxLength: 12 }))
    .filter(([, parts]) => parts.reduce((sum, part) => sum + part, 0n) > 0n);

  it('rounds each share half up and the shares sum to the whole within half a unit per share', () => {
    fc.assert(
      fc.property(split, ([whole, parts]) => {
        const total = parts.reduce((sum, part) => sum + part, 0n);
        const shares = parts.map((part) => prorate({ whole, part, total }));
        shares.forEach((share, index) => expect(share).toBe((2n * whole * parts[index]! + total) / (2n * total)));
        const drift = shares.reduce((sum, share) => sum + share, 0n) - whole;
        expect((drift < 0n ? -drift : drift) * 2n <= BigInt(parts.length)).toBe(true);
      }),
    );
  });

  it('gives nothing for nothing, everything for the total, and more for a larger part', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), fc.bigInt({ min: 0n, max: 10n ** 9n }), (whole, total, part) => {
        const bounded = part % (total + 1n);
        expect(prorate({ whole, part: 0n, total })).toBe(0n);
        expect(prorate({ whole, part: total, total })).toBe(whole);
        if (bounded < total) expect(prorate({ whole, part: bounded, total }) <= prorate({ whole, part: bounded + 1n, total })).toBe(true);
      }),
    );
  });
});

describe('money values', () => {
  it('add only within one currency and leave JSON only when exact', () => {
    expect(addMoney(money(1n, 'CNY'), money(2n, 'CNY'))).toEqual(money(3n, 'CNY'));
    expect(() => addMoney(money(1n, 'CNY'), money(2n, 'USD'))).toThrow(AssertionFailure);
    expect(minorToJsonNumber(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => minorToJsonNumber(BigInt(Number.MAX_SAFE_INTEGER) + 1n)).toThrow(AssertionFailure);
  });
});
