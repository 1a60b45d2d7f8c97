import { generate, generateSecret, generateURI, verify } from 'otplib';
import { unixSeconds } from '../platform/clock.js';

/**
 * TOTP (RFC 6238) as every authenticator app speaks it: SHA-1, 6 digits, 30 s
 * steps. A code from the step before or after the current one is accepted, to
 * allow for clock drift between the phone and the server. Time always comes
 * from the caller (the injected clock), never from otplib's own Date.now().
 */
export const totpPeriodSeconds = 30;
export const totpDigits = 6;
export const totpWindowSteps = 1;
export const totpIssuer = 'Fen';

const codePattern = /^\d{6}$/;

export function generateTotpSecret(): string {
  return generateSecret();
}

export function totpUri(secret: string, label: string): string {
  return generateURI({ issuer: totpIssuer, label, secret, digits: totpDigits, period: totpPeriodSeconds });
}

export function totpTimeStep(at: Date): number {
  return Math.floor(unixSeconds(at) / totpPeriodSeconds);
}

/** The code an authenticator app shows at `at`: for tests, the CLI and demo data. */
export function totpCodeAt(secret: string, at: Date): Promise<string> {
  return generate({ secret, epoch: unixSeconds(at), digits: totpDigits, period: totpPeriodSeconds });
}

/** People type codes with spaces ("123 456"); those are not part of the code. */
export function normaliseTotpCode(code: string): string {
  return code.replace(/\s+/g, '');
}

/**
 * Checks a code at time `at`. Returns the time step it belongs to, so the
 * caller can refuse a second use of it, or undefined when it does not match.
 * Steps at or before `afterTimeStep` (the last one this user used) never match:
 * a code seen once, or an older one, cannot be played back.
 */
export async function matchTotp(secret: string, code: string, at: Date, afterTimeStep?: number): Promise<number | undefined> {
  const token = normaliseTotpCode(code);
  if (!codePattern.test(token)) return undefined;
  const epoch = unixSeconds(at);
  // otplib refuses an afterTimeStep beyond the window's last step; such a step can only come from a clock moved backwards.
  const windowEnd = totpTimeStep(at) + totpWindowSteps;
  if (afterTimeStep !== undefined && afterTimeStep >= windowEnd) return undefined;
  const result = await verify({
    secret,
    token,
    epoch,
    digits: totpDigits,
    period: totpPeriodSeconds,
    epochTolerance: totpWindowSteps * totpPeriodSeconds,
    ...(afterTimeStep !== undefined && afterTimeStep >= 0 ? { afterTimeStep } : {}),
  });
  if (!result.valid || !('timeStep' in result)) return undefined;
  return result.timeStep;
}
