/**
 * Programmer errors: a broken invariant stops the request or job at once.
 * Expected failures (bad input, insufficient funds, …) are values, never these.
 */
export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

export function assertNever(value: never, message = 'unexpected value'): never {
  throw new AssertionFailure(`${message}: ${JSON.stringify(value)}`);
}
