import { describe, expect, it } from 'vitest';
import { generateTotpSecret, matchTotp, normaliseTotpCode, totpCodeAt, totpTimeStep, totpUri } from '../../src/auth/totp.js';

describe('TOTP', () => {
  // RFC 6238 appendix B: the SHA-1 test secret "12345678901234567890" in base32.
  const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

  it('matches the RFC 6238 test vectors (last six digits)', async () => {
    expect(await totpCodeAt(rfcSecret, new Date(59_000))).toBe('287082');
    expect(await totpCodeAt(rfcSecret, new Date(1_111_111_109_000))).toBe('081804');
    expect(await totpCodeAt(rfcSecret, new Date(2_000_000_000_000))).toBe('279037');
  });

  it('accepts one step either side of now and returns the step that matched', async () => {
    const secret = generateTotpSecret();
    const now = new Date('2026-03-01T10:00:15Z');
    const step = totpTimeStep(now);
    for (const offset of [-1, 0, 1]) {
      const code = await totpCodeAt(secret, new Date(now.getTime() + offset * 30_000));
      expect(await matchTotp(secret, code, now)).toBe(step + offset);
    }
    for (const offset of [-2, 2]) {
      const code = await totpCodeAt(secret, new Date(now.getTime() + offset * 30_000));
      expect(await matchTotp(secret, code, now)).toBeUndefined();
    }
  });

  it('refuses steps at or before the last one used', async () => {
    const secret = generateTotpSecret();
    const now = new Date('2026-03-01T10:00:15Z');
    const step = totpTimeStep(now);
    const code = await totpCodeAt(secret, now);
    expect(await matchTotp(secret, code, now, step)).toBeUndefined();
    expect(await matchTotp(secret, code, now, step - 1)).toBe(step);
    // A last-used step ahead of the whole window (a clock moved back) refuses everything rather than throwing.
    expect(await matchTotp(secret, code, now, step + 5)).toBeUndefined();
  });

  it('takes codes with spaces and refuses anything that is not six digits', async () => {
    const secret = generateTotpSecret();
    const now = new Date('2026-03-01T10:00:15Z');
    const code = await totpCodeAt(secret, now);
    expect(normaliseTotpCode(`${code.slice(0, 3)} ${code.slice(3)}`)).toBe(code);
    expect(await matchTotp(secret, ` ${code.slice(0, 3)} ${code.slice(3)} `, now)).toBe(totpTimeStep(now));
    for (const bad of ['', '12345', '1234567', 'abcdef', '12345e']) expect(await matchTotp(secret, bad, now)).toBeUndefined();
  });

  it('builds an otpauth URI authenticator apps understand', () => {
    const uri = new URL(totpUri('JBSWY3DPEHPK3PXP', 'ops@fen.test'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe('JBSWY3DPEHPK3PXP');
    expect(uri.searchParams.get('issuer')).toBe('Fen');
  });
});
