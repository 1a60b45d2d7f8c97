import fc from 'fast-check';
import { idPrefixOfPattern, validValue, type GenerationHints, type JsonSchema } from './json-schema.js';
import { bodyPlans, hostileStrings, type BodyPlan, type Expectation } from './mutations.js';
import type { Operation } from './openapi.js';

/**
 * One fuzzed request, as data: which route, what goes in the path, the query,
 * the body and the authentication, and whether the whole must be refused.
 * Ids are not concrete here but references into the pools of real ids, so the
 * same seed draws the same choices whatever ids this run's database holds.
 */
export type PathValue =
  | { kind: 'real'; prefix: string; pick: number }
  | { kind: 'literal'; encoded: string; expectation: Expectation; description: string };

export type AppAuthMode =
  | 'valid'
  | 'missing_header'
  | 'bad_signature'
  | 'signature_over_other_body'
  | 'stale_timestamp'
  | 'future_timestamp'
  | 'garbage_timestamp'
  | 'replayed_nonce'
  | 'short_nonce'
  | 'unknown_app'
  | 'no_idempotency_key'
  | 'bad_idempotency_key'
  | 'reused_idempotency_key';

export type OperatorAuthMode = 'valid' | 'no_session' | 'garbage_session' | 'no_csrf' | 'wrong_csrf' | 'read_only_role';

export type AuthPlan = { kind: 'app'; mode: AppAuthMode } | { kind: 'operator'; mode: OperatorAuthMode } | { kind: 'none' };

export interface RequestPlan {
  operation: Operation;
  path: Record<string, PathValue>;
  /** Encoded `name=value` pairs, in order. */
  query: string[];
  body: BodyPlan;
  auth: AuthPlan;
  /** The caller's address; varied for the sign-in route so its per-address limit does not stop every attempt. */
  remoteAddress: string;
  expectation: Expectation;
  /** Whatever the answer, the database must not change (beyond security records): a notification Fen must not believe. */
  mustNotChange?: boolean;
  description: string;
}

/** Percent-encodes text as a hostile client would: lone surrogates go out as the bytes of WTF-8, not as an exception. */
export function percentEncode(text: string): string {
  let out = '';
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += `%${(0xe0 | (code >> 12)).toString(16).toUpperCase()}%${(0x80 | ((code >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (code & 0x3f)).toString(16).toUpperCase()}`;
    } else {
      out += encodeURIComponent(character);
    }
  }
  return out;
}

/** Path segments that are wrong in ways an encoder would never produce. */
const rawGarbageSegments: ReadonlyArray<[string, string]> = [
  ['%', 'a lone percent sign'],
  ['%zz', 'a bad percent escape'],
  ['%ED%A0%80', 'the bytes of a lone surrogate'],
  ['%C0%AE%C0%AE', 'overlong UTF-8 dots'],
  ['%FF%FE', 'bytes that are not UTF-8'],
  ['%00', 'a NUL byte'],
  ['..', 'a parent-directory segment'],
  ['%2e%2e%2f%2e%2e', 'encoded ../..'],
  ['a%2Fb', 'an encoded slash'],
  ['pay_%00aaaaaaaaaaaaaaaaaaaaaaaaa', 'a NUL inside an id'],
];

/** The prefix of the ids a path parameter names: from its pattern, or from the collection in the path. */
export function idPrefixFor(operation: Operation, parameterName: string, schema: JsonSchema): string | undefined {
  const fromPattern = idPrefixOfPattern(schema.pattern);
  if (fromPattern) return fromPattern;
  if (parameterName !== 'id') return undefined;
  const collections: Record<string, string> = { operators: 'usr', merchants: 'mch', apps: 'app', accounts: 'acc', pay: 'pay', 'channel-accounts': 'cha' };
  const segments = operation.path.split('/');
  const collection = segments[segments.indexOf('{id}') - 1] ?? '';
  return collections[collection];
}

function absentIdLike(prefix: string): fc.Arbitrary<string> {
  return fc.stringMatching(/^[0-9a-hjkmnp-tv-z]{26}$/).map((tail) => `${prefix}_${tail}`);
}

interface Choices<T> {
  valid: fc.Arbitrary<T>;
  broken: fc.Arbitrary<T>;
}

function pathValues(operation: Operation, name: string, schema: JsonSchema, hints: PlanHints): Choices<PathValue> {
  const prefix = idPrefixFor(operation, name, schema);
  const literal = (encoded: string, expectation: Expectation, description: string): PathValue => ({ kind: 'literal', encoded, expectation, description });
  const garbage: Array<fc.Arbitrary<PathValue>> = [
    fc.constantFrom(...rawGarbageSegments).map(([encoded, what]) => literal(encoded, 'reject', `${name} is ${what}`)),
    fc.constantFrom(...hostileStrings.filter((text) => text.trim().length > 0)).map((text) => literal(percentEncode(text), prefix ? 'reject' : 'either', `${name} = ${JSON.stringify(text)}`)),
    fc.integer({ min: 101, max: 3000 }).map((length) => literal('p'.repeat(length), 'reject', `${name} of ${length} characters`)),
    fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }).map((text) => literal(percentEncode(text), prefix ? 'reject' : 'either', `${name} = ${JSON.stringify(text)}`)),
  ];
  const pinned = hints.pathValues?.[`${operation.key}:${name}`];
  if (pinned) return { valid: pinned.map((value) => literal(percentEncode(value), 'either', '')), broken: fc.oneof(...garbage) };
  if (!prefix) return { valid: validValue(schema).map((value) => literal(percentEncode(String(value)), 'either', '')), broken: fc.oneof(...garbage) };
  return {
    valid: fc.nat().map((pick): PathValue => ({ kind: 'real', prefix, pick })),
    broken: fc.oneof(
      { weight: 3, arbitrary: absentIdLike(prefix).map((id) => literal(id, 'reject', `${name} = ${id} (well-formed, absent)`)) },
      ...garbage.map((arbitrary) => ({ weight: 1, arbitrary })),
    ),
  };
}

interface QueryPlan {
  pairs: string[];
  expectation: Expectation;
  description: string;
}

/** A numeric query parameter goes through z.coerce.number(): Number(text), then the integer and range checks. */
function coercedNumberExpectation(schema: JsonSchema, text: string): Expectation {
  const value = Number(text);
  if (!Number.isFinite(value)) return 'reject';
  if (schema.type === 'integer' && !Number.isInteger(value)) return 'reject';
  if (schema.minimum !== undefined && value < schema.minimum) return 'reject';
  if (schema.maximum !== undefined && value > schema.maximum) return 'reject';
  return 'either';
}

function queryValueText(value: unknown): string {
  return percentEncode(typeof value === 'string' ? value : JSON.stringify(value));
}

/** Valid values for the declared parameters, then at most one of them broken, duplicated, or joined by strangers. */
function queryPlans(operation: Operation, hints: PlanHints): Choices<QueryPlan> {
  const parameters = operation.queryParameters;
  const validPairs = fc.tuple(
    ...parameters.map((parameter) => {
      const hinted = hints.queryValues?.[`${operation.key}:${parameter.name}`];
      const generated = validValue(parameter.schema, hints.generation);
      const value = (hinted ? fc.oneof(hinted, generated) : generated).map((candidate) => `${parameter.name}=${queryValueText(candidate)}`);
      return parameter.required ? value.map((pair) => [pair]) : fc.option(value, { nil: undefined }).map((pair) => (pair === undefined ? [] : [pair]));
    }),
  ).map((lists) => lists.flat());
  if (parameters.length === 0) {
    return {
      valid: fc.constant({ pairs: [], expectation: 'either' as const, description: '' }),
      broken: fc.constantFrom('x=1', '__proto__[a]=1', 'a=%ZZ', '=', '&&&').map((pair) => ({ pairs: [pair], expectation: 'either' as const, description: `query ${pair}` })),
    };
  }
  const plan = (pairs: string[], expectation: Expectation, description: string): QueryPlan => ({ pairs, expectation, description });
  const broken = fc.tuple(validPairs, fc.constantFrom(...parameters)).chain(([pairs, parameter]) => {
    const others = pairs.filter((pair) => !pair.startsWith(`${parameter.name}=`));
    const schema = parameter.schema;
    const numeric = schema.type === 'integer' || schema.type === 'number';
    const wrongValues: Array<[string, Expectation]> = numeric
      ? ['abc', '1.5', '-1', '0', '1e3', '99999999999999999999', 'NaN', 'Infinity', '', '0x10', ' 5 ', '-0'].map((text): [string, Expectation] => [text, coercedNumberExpectation(schema, text)])
      : [
          ['x'.repeat((schema.maxLength ?? 300) + 1), schema.maxLength !== undefined ? 'reject' : 'either'],
          ['%00', schema.pattern || schema.enum ? 'reject' : 'either'],
          ['%ED%A0%80', 'either'],
          ['%zz', 'either'],
          ['not-in-the-enum', schema.enum ? 'reject' : 'either'],
          ['', schema.minLength || schema.enum || schema.pattern ? 'reject' : 'either'],
        ];
    return fc.oneof(
      fc.constantFrom(...wrongValues).map(([text, expectation]) => plan([...others, `${parameter.name}=${text.startsWith('%') ? text : percentEncode(text)}`], expectation, `query ${parameter.name}=${text.slice(0, 40)}`)),
      fc.constantFrom(...hostileStrings).map((text) => plan([...others, `${parameter.name}=${percentEncode(text)}`], 'either', `query ${parameter.name}=${JSON.stringify(text)}`)),
      fc.constant(plan([...pairs, `${parameter.name}=1`, `${parameter.name}=2`], 'either', `query ${parameter.name} repeated`)),
      fc.constant(plan([...others, `${parameter.name}[nested]=1`], parameter.required ? 'reject' : 'either', `query ${parameter.name}[nested]`)),
      fc.constant(plan([...pairs, '__proto__=polluted', 'constructor[prototype]=x'], 'either', 'query with prototype keys')),
    );
  });
  return { valid: validPairs.map((pairs) => ({ pairs, expectation: 'either' as const, description: '' })), broken };
}

const appAuthModes: ReadonlyArray<[AppAuthMode, boolean]> = [
  ['missing_header', false],
  ['bad_signature', false],
  ['signature_over_other_body', false],
  ['stale_timestamp', false],
  ['future_timestamp', false],
  ['garbage_timestamp', false],
  ['replayed_nonce', false],
  ['short_nonce', false],
  ['unknown_app', false],
  ['no_idempotency_key', true],
  ['bad_idempotency_key', true],
  ['reused_idempotency_key', true],
];

function authPlans(operation: Operation, hints: PlanHints): Choices<AuthPlan> | undefined {
  const auth = hints.authOf(operation);
  if (auth === 'app') {
    // The idempotency modes only mean something on the POSTs that claim a key.
    const broken = appAuthModes.filter(([, idempotencyOnly]) => !idempotencyOnly || hints.idempotent(operation)).map(([mode]) => mode);
    return { valid: fc.constant({ kind: 'app' as const, mode: 'valid' as const }), broken: fc.constantFrom(...broken).map((mode) => ({ kind: 'app' as const, mode })) };
  }
  if (auth === 'operator') {
    const broken: OperatorAuthMode[] = operation.method === 'GET' ? ['no_session', 'garbage_session', 'read_only_role'] : ['no_session', 'garbage_session', 'no_csrf', 'wrong_csrf', 'read_only_role'];
    return { valid: fc.constant({ kind: 'operator' as const, mode: 'valid' as const }), broken: fc.constantFrom(...broken).map((mode) => ({ kind: 'operator' as const, mode })) };
  }
  return undefined;
}

export function authExpectation(auth: AuthPlan, operation: Operation, hints: Pick<PlanHints, 'anyRoleMay'>): Expectation {
  if (auth.kind === 'none' || auth.mode === 'valid') return 'either';
  // A read-only operator may still read, and do what any signed-in operator may (sign out).
  if (auth.kind === 'operator' && auth.mode === 'read_only_role' && (operation.method === 'GET' || hints.anyRoleMay?.(operation))) return 'either';
  // Replaying a key with the same request replays the first answer, which may be a success.
  if (auth.kind === 'app' && auth.mode === 'reused_idempotency_key') return 'either';
  return 'reject';
}

export interface PlanHints {
  generation: GenerationHints;
  /** Values for path parameters that are not ids (`PUT …/routes/{method}`), by `operation key:parameter`. */
  pathValues?: Record<string, fc.Arbitrary<string>>;
  /** Values for query parameters, by `operation key:parameter`, drawn as often as the schema's own. */
  queryValues?: Record<string, fc.Arbitrary<string>>;
  /** Per-operation field hints for valid bodies. */
  bodyFields?: (operation: Operation) => GenerationHints['fields'];
  authOf(operation: Operation): 'app' | 'operator' | 'none';
  idempotent(operation: Operation): boolean;
  /** Operator routes any signed-in operator may use, whatever their roles. */
  anyRoleMay?: (operation: Operation) => boolean;
  /** Relative weights: a wholly valid request, and one broken part (path, query, body or authentication). */
  weights: { valid: number; path: number; query: number; body: number; auth: number };
}

type Part = 'none' | 'path' | 'query' | 'body' | 'auth';

/**
 * A request for one operation: every part valid, or exactly one part broken.
 * One broken part at a time keeps a refusal attributable and lets the rest of
 * the request carry it as deep into Fen as it can go.
 */
export function requestPlan(operation: Operation, hints: PlanHints): fc.Arbitrary<RequestPlan> {
  const paths = operation.pathParameters.map((parameter) => pathValues(operation, parameter.name, parameter.schema, hints));
  const queries = queryPlans(operation, hints);
  const bodyHints: GenerationHints = { ...hints.generation, fields: hints.bodyFields?.(operation) ?? {} };
  const bodies = operation.method === 'GET' ? undefined : bodyPlans(operation.body, bodyHints);
  const auths = authPlans(operation, hints);
  const address = operation.key === 'POST /admin/v1/auth/login' ? fc.ipV4() : fc.constant('127.0.0.1');
  const parts: Array<{ weight: number; arbitrary: fc.Arbitrary<Part> }> = [
    { weight: hints.weights.valid, arbitrary: fc.constant('none' as const) },
    { weight: hints.weights.query, arbitrary: fc.constant('query' as const) },
  ];
  if (paths.length > 0) parts.push({ weight: hints.weights.path, arbitrary: fc.constant('path' as const) });
  if (bodies) parts.push({ weight: hints.weights.body, arbitrary: fc.constant('body' as const) });
  if (auths) parts.push({ weight: hints.weights.auth, arbitrary: fc.constant('auth' as const) });
  const noBody = fc.constant<BodyPlan>({ payload: undefined, contentType: undefined, expectation: 'either', description: '' });
  return fc.oneof(...parts).chain((broken) =>
    fc
      .record({
        path: fc.tuple(...paths.map((choices, index) => (broken === 'path' && index === 0 ? choices.broken : choices.valid))),
        query: broken === 'query' ? queries.broken : queries.valid,
        body: bodies ? (broken === 'body' ? bodies.broken : bodies.valid) : noBody,
        auth: auths ? (broken === 'auth' ? auths.broken : auths.valid) : fc.constant<AuthPlan>({ kind: 'none' }),
        address,
      })
      .map((drawn): RequestPlan => {
        const path: Record<string, PathValue> = {};
        operation.pathParameters.forEach((parameter, index) => {
          path[parameter.name] = drawn.path[index] as PathValue;
        });
        const verdicts: Array<[Expectation, string]> = [
          ...Object.values(path).map((value): [Expectation, string] => (value.kind === 'literal' ? [value.expectation, value.description] : ['either', ''])),
          [drawn.query.expectation, drawn.query.description],
          [drawn.body.expectation, drawn.body.description],
          [authExpectation(drawn.auth, operation, hints), drawn.auth.kind === 'none' || drawn.auth.mode === 'valid' ? '' : `auth: ${drawn.auth.mode}`],
        ];
        return {
          operation,
          path,
          query: drawn.query.pairs,
          body: drawn.body,
          auth: drawn.auth,
          remoteAddress: drawn.address,
          expectation: verdicts.some(([verdict]) => verdict === 'reject') ? 'reject' : 'either',
          description: verdicts.map(([, text]) => text).filter(Boolean).join('; ') || 'valid request',
        };
      }),
  );
}
