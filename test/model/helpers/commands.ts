import fc from 'fast-check';
import type { NotificationFault } from './reference-model.js';

/**
 * The steps of a model run, as data. Targets are indexes into the run's
 * payments, resolved when the step runs (among the payments the step makes
 * sense for, when there are any), so a sequence drawn from a seed means the
 * same thing whatever ids Fen hands out.
 */
export type Command =
  | { kind: 'create'; amount: number; expiresMinutes: number }
  | { kind: 'pay'; target: number; fault: NotificationFault; copies: number }
  | { kind: 'close'; target: number }
  | { kind: 'expire'; minutes: number }
  | { kind: 'sweep' }
  | { kind: 'jobs' }
  | { kind: 'refund'; target: number; size: 'partial' | 'full' | 'too_much'; fraction: number; excess: number }
  | { kind: 'refund_unpaid'; target: number };

export const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      // Small amounts hit the fee's floor, large ones its cap.
      amount: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 300, max: 200_000 }), fc.integer({ min: 800_000, max: 2_000_000 })),
      // Whole minutes: Alipay's QR timeout is in minutes, so Fen's expiry and the channel's coincide.
      expiresMinutes: fc.integer({ min: 5, max: 60 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('pay' as const),
      target: fc.nat(),
      fault: fc.constantFrom<NotificationFault>('none', 'none', 'none', 'duplicate', 'drop'),
      copies: fc.integer({ min: 2, max: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('close' as const), target: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), minutes: fc.integer({ min: 1, max: 45 }) }) },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: 'sweep' }) },
  { weight: 1, arbitrary: fc.constant<Command>({ kind: 'jobs' }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      target: fc.nat(),
      size: fc.constantFrom<'partial' | 'full' | 'too_much'>('partial', 'partial', 'full', 'too_much'),
      fraction: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      excess: fc.integer({ min: 0, max: 10_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('refund_unpaid' as const), target: fc.nat() }) },
);

export function describeCommand(command: Command): string {
  switch (command.kind) {
    case 'create':
      return `create ${command.amount} fen, expiring in ${command.expiresMinutes} min`;
    case 'pay':
      return `payer pays #${command.target}${command.fault === 'none' ? '' : command.fault === 'drop' ? ' (notification lost)' : ` (notification ×${command.copies})`}`;
    case 'close':
      return `merchant closes #${command.target}`;
    case 'expire':
      return `clock +${command.minutes} min, expiry jobs run`;
    case 'sweep':
      return 'clock +11 min, the minute sweep runs';
    case 'jobs':
      return 'queued jobs run';
    case 'refund':
      return `refund #${command.target} (${command.size}${command.size === 'partial' ? ` ${command.fraction.toFixed(2)}` : ''})`;
    case 'refund_unpaid':
      return `refund an unpaid payment #${command.target}`;
  }
}
