import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logging.js';
import { DeliveryLoop } from '../../src/simulators/shared/delivery-loop.js';

/** A pass the test finishes by hand, counting how many were started. */
function controlledPass() {
  const state = { started: 0, finish: [] as Array<() => void> };
  const pass = () =>
    new Promise<void>((resolve) => {
      state.started += 1;
      state.finish.push(resolve);
    });
  return { state, pass };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));
// An interval far longer than any test, so every pass here comes from a kick.
const intervalMs = 3_600_000;
let loop: DeliveryLoop | undefined;

afterEach(async () => {
  const stopping = loop?.stop();
  loop = undefined;
  await stopping;
});

describe('the simulator delivery loop’s kick', () => {
  it('ignores a kick while the loop is stopped (tests drive passes themselves)', async () => {
    const { state, pass } = controlledPass();
    loop = new DeliveryLoop(pass, createLogger('silent'), intervalMs, 'failed');
    loop.kick();
    await flush();
    expect(state.started).toBe(0);
  });

  it('runs a pass at once when kicked, and exactly one more after a pass that was kicked meanwhile', async () => {
    const { state, pass } = controlledPass();
    loop = new DeliveryLoop(pass, createLogger('silent'), intervalMs, 'failed');
    loop.start();
    loop.kick();
    expect(state.started).toBe(1);
    // Three notifications committed during the pass: one more pass picks them all up.
    loop.kick();
    loop.kick();
    loop.kick();
    expect(state.started).toBe(1);
    state.finish[0]!();
    await flush();
    expect(state.started).toBe(2);
    state.finish[1]!();
    await flush();
    expect(state.started).toBe(2);
  });
});
