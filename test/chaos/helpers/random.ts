import { randomInt } from 'node:crypto';

/**
 * Seeded randomness for the chaos tests, so a failure replays: every test
 * prints its seed, and `CHAOS_SEED=<seed> npm run test:chaos` runs the same
 * kill schedule and the same load again. (The moments still land on a
 * different line of code each run, because processes never run at exactly the
 * same speed; the schedule and the orders are what replays.)
 */
export interface Random {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  between(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A new generator derived from this seed and a label, so each test gets its own stream. */
  fork(label: string): Random;
}

/** mulberry32: small, fast and good enough to schedule kills. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
  const random: Random = {
    seed,
    next,
    between: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (probability) => next() < probability,
    pick: (items) => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    },
    fork: (label) => {
      let hash = seed >>> 0;
      for (const character of label) hash = Math.imul(hash ^ character.charCodeAt(0), 16777619) >>> 0;
      return seededRandom(hash);
    },
  };
  return random;
}

/** The run's seed: CHAOS_SEED when given, otherwise a fresh one. */
export function chaosSeed(): number {
  const given = process.env.CHAOS_SEED;
  if (given !== undefined && given !== '') {
    const parsed = Number(given);
    if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`CHAOS_SEED must be a non-negative integer, not ${given}`);
    return parsed;
  }
  return randomInt(2 ** 31);
}
