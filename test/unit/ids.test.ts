import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { isId, newId } from '../../src/platform/ids.js';

const timeOf = (id: string) => decodeTime(id.slice(4).toUpperCase());

describe('newId', () => {
  it('makes prefixed, lower-case ids that isId accepts', () => {
    const id = newId('payment');
    expect(id).toMatch(/^pay_[0-9a-z]{26}$/);
    expect(isId('payment', id)).toBe(true);
    expect(isId('refund', id)).toBe(false);
  });

  it('carries the time it was asked for, even behind a machine-time id made just before', () => {
    // A test's clock (or a clock set back) runs behind the machine's; the id must still carry the given time.
    newId('event');
    const past = Date.parse('2026-01-14T01:00:00Z');
    expect(timeOf(newId('payment', past))).toBe(past);
    expect(timeOf(newId('payment', past - 60_000))).toBe(past - 60_000);
  });

  it('keeps ids made at one given time in the order they were made', () => {
    const at = Date.parse('2026-01-14T02:00:00Z');
    const ids = Array.from({ length: 50 }, () => newId('refund', at));
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => timeOf(id) === at)).toBe(true);
  });
});
