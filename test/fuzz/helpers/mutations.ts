import fc from 'fast-check';
import { jsonTypeOf, numericBounds, typeCertainlyRefused, validValue, type GenerationHints, type JsonSchema } from './json-schema.js';

/**
 * Hostile input, built from a route's schema. Each generator returns a plan for
 * one request part and says whether the schema certainly refuses it (`reject`:
 * the request must end in a 4xx) or might accept it (`either`: a 2xx is fine,
 * a 5xx never is). The description names the one thing that was broken, so a
 * failure report reads like a bug report.
 */
export type Expectation = 'reject' | 'either';

export interface BodyPlan {
  payload: string | Buffer | undefined;
  contentType: string | undefined;
  /** Headers that belong to the body (a lying Content-Length). */
  headers?: Record<string, string>;
  expectation: Expectation;
  description: string;
}

/** Over the server's 1 MiB body limit. */
export const oversizedBodyBytes = 1024 * 1024 + 1;

export const hostileStrings: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfff',
  '\ud83d',
  '\u202eevil\u202c',
  '\u200f\u200e',
  '\ufeffbom',
  '\u200b',
  'e\u0301',
  '𝕏🙂👩‍👩‍👧',
  '支付宝付款',
  '\r\n\t',
  '%00',
  '%',
  "' OR 1=1 --",
  '"; DROP TABLE payments; --',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '${7*7}',
  '{{constructor.constructor}}',
  '__proto__',
  'NaN',
  'Infinity',
  '-0',
  '1e308',
  '9007199254740993',
  'null',
  'true',
];

export const hostileNumbers: readonly number[] = [0, -0, -1, 1.5, -1.5, 0.1, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e308, -1e308, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];

/** Number texts that JSON.stringify cannot produce but a client can send. */
export const rawNumberTexts: readonly string[] = ['9007199254740993', '18446744073709551616', '1e400', '-1e400', '1.0', '-0', '1E2', '0.000001', '123456789012345678901234567890', '1e-400'];

const wrongTypeValues: readonly unknown[] = ['12', 'yes', '', 12, -1, 1.5, true, false, null, [], ['a'], [1, 2], {}, { nested: { deeper: [1] } }];

interface FieldTarget {
  path: Array<string | number>;
  schema: JsonSchema;
  required: boolean;
  parent: JsonSchema;
}

/** Every field of a value the schema describes, nested objects and array items included. */
function fieldsOf(schema: JsonSchema, value: unknown, path: Array<string | number> = []): FieldTarget[] {
  const targets: FieldTarget[] = [];
  if (schema.type === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const required = new Set(schema.required ?? []);
    for (const [name, child] of Object.entries(schema.properties ?? {})) {
      targets.push({ path: [...path, name], schema: child, required: required.has(name), parent: schema });
      const present = (value as Record<string, unknown>)[name];
      if (present !== undefined) targets.push(...fieldsOf(child, present, [...path, name]));
    }
  }
  if (schema.type === 'array' && Array.isArray(value) && value.length > 0 && schema.items) {
    targets.push({ path: [...path, 0], schema: schema.items, required: true, parent: schema });
    targets.push(...fieldsOf(schema.items, value[0], [...path, 0]));
  }
  return targets;
}

function setAt(root: unknown, path: Array<string | number>, replacement: unknown, remove = false): unknown {
  const copy: unknown = structuredClone(root);
  let cursor = copy as Record<string | number, unknown>;
  for (let index = 0; index < path.length - 1; index += 1) {
    const segment = path[index] as string | number;
    const next = cursor[segment];
    if (next === null || typeof next !== 'object') cursor[segment] = typeof path[index + 1] === 'number' ? [] : {};
    cursor = cursor[segment] as Record<string | number, unknown>;
  }
  const last = path.at(-1) as string | number;
  if (remove) delete cursor[last];
  else cursor[last] = replacement;
  return copy;
}

function describePath(path: Array<string | number>): string {
  return path.map((segment) => (typeof segment === 'number' ? `[${segment}]` : segment)).join('.');
}

/** How a number fares against a numeric schema: certainly refused, or possibly fine. */
function numberExpectation(schema: JsonSchema, value: number): Expectation {
  if (schema.type !== 'integer' && schema.type !== 'number') return typeCertainlyRefused(schema, jsonTypeOf(value)) ? 'reject' : 'either';
  if (!Number.isFinite(value)) return 'reject';
  if (schema.type === 'integer' && !Number.isInteger(value)) return 'reject';
  const { min, max } = numericBounds(schema);
  if (min !== undefined && value < min) return 'reject';
  if (max !== undefined && value > max) return 'reject';
  if (schema.enum && !schema.enum.includes(value)) return 'reject';
  return 'either';
}

/** How a string fares: too long, outside an enum or unable to match a pattern are certain refusals. */
function stringExpectation(schema: JsonSchema, value: string, inserted: string): Expectation {
  if (schema.type !== 'string') return typeCertainlyRefused(schema, 'string') ? 'reject' : 'either';
  if (schema.maxLength !== undefined && value.trim().length > schema.maxLength) return 'reject';
  if (schema.enum && !schema.enum.includes(value)) return 'reject';
  // Every pattern in Fen's schemas is a whitelist of printable characters: a control, a surrogate or a format mark never matches.
  if (schema.pattern && [...inserted].some(neverInAPattern)) return 'reject';
  return 'either';
}

function neverInAPattern(character: string): boolean {
  const code = character.charCodeAt(0);
  const format = (code >= 0x200b && code <= 0x200f) || (code >= 0x202a && code <= 0x202e) || code === 0xfeff;
  return code < 0x20 || (code >= 0xd800 && code <= 0xdfff) || format || '%<"{$'.includes(character);
}

export interface SerializedBody {
  value: unknown;
  /** Markers in the value replaced by raw JSON text after stringifying. */
  raw?: Record<string, string>;
}

export function serializeBody(body: SerializedBody): string {
  let text = JSON.stringify(body.value);
  for (const [marker, raw] of Object.entries(body.raw ?? {})) text = text.replace(JSON.stringify(marker), raw);
  return text;
}

interface ValueMutation {
  body: SerializedBody;
  expectation: Expectation;
  description: string;
}

/** One field of a valid value broken in one way. */
function fieldMutation(schema: JsonSchema, valid: unknown): fc.Arbitrary<ValueMutation> | undefined {
  const targets = fieldsOf(schema, valid);
  if (targets.length === 0) return undefined;
  return fc.constantFrom(...targets).chain((target) => {
    const where = describePath(target.path);
    const options: Array<fc.Arbitrary<ValueMutation>> = [
      fc.constantFrom(...wrongTypeValues).map((value) => ({
        body: { value: setAt(valid, target.path, value) },
        expectation: typeCertainlyRefused(target.schema, jsonTypeOf(value)) ? ('reject' as const) : ('either' as const),
        description: `${where} = ${JSON.stringify(value)} (wrong type)`,
      })),
      fc.constantFrom(...hostileNumbers).map((value) => ({
        body: { value: setAt(valid, target.path, value) },
        expectation: numberExpectation(target.schema, value),
        description: `${where} = ${Object.is(value, -0) ? '-0' : value} (hostile number)`,
      })),
      fc.constantFrom(...rawNumberTexts).map((text) => ({
        body: { value: setAt(valid, target.path, '@@raw@@'), raw: { '@@raw@@': text } },
        expectation: numberExpectation(target.schema, Number(text)),
        description: `${where} = ${text} (raw number text)`,
      })),
      fc.tuple(fc.constantFrom(...hostileStrings), fc.string({ maxLength: 6 })).map(([hostile, around]) => {
        const value = `${around}${hostile}${around}`;
        return {
          body: { value: setAt(valid, target.path, value) },
          expectation: stringExpectation(target.schema, value, hostile),
          description: `${where} = ${JSON.stringify(value)} (hostile text)`,
        };
      }),
      fc.integer({ min: 1, max: 70_000 }).map((extra) => {
        const length = (target.schema.maxLength ?? 256) + extra;
        const value = 'x'.repeat(length);
        return { body: { value: setAt(valid, target.path, value) }, expectation: stringExpectation(target.schema, value, 'x'), description: `${where} = ${length} × "x" (huge string)` };
      }),
    ];
    if (target.required && target.schema.default === undefined && typeof target.path.at(-1) === 'string') {
      options.push(fc.constant({ body: { value: setAt(valid, target.path, undefined, true) }, expectation: 'reject' as const, description: `${where} missing (required)` }));
    }
    if (target.schema.type === 'array') {
      const count = (target.schema.maxItems ?? 10) + 1;
      options.push(fc.constant({ body: { value: setAt(valid, target.path, Array.from({ length: count }, () => 'x')) }, expectation: 'reject' as const, description: `${where} with ${count} items (too many)` }));
    }
    return fc.oneof(...options);
  });
}

const extraFieldNames: readonly string[] = ['unexpected', '__proto__', 'constructor', 'prototype', '', 'amount ', 'AMOUNT', 'id', 'status', 'merchant_id', '$where'];

function extraField(schema: JsonSchema, valid: unknown): fc.Arbitrary<ValueMutation> | undefined {
  if (schema.type !== 'object' || valid === null || typeof valid !== 'object' || Array.isArray(valid)) return undefined;
  return fc.tuple(fc.constantFrom(...extraFieldNames), fc.constantFrom<unknown>('x', 1, null, { polluted: true })).map(([name, value]) => {
    const declared = Object.hasOwn(schema.properties ?? {}, name);
    // JSON.stringify would drop an own "__proto__" set through assignment; build the text by hand so the key is really sent.
    const text = JSON.stringify(valid).replace(/^\{/, `{${JSON.stringify(name)}:${JSON.stringify(value)}${Object.keys(valid).length > 0 ? ',' : ''}`);
    return {
      body: { value: '@@whole@@', raw: { '@@whole@@': text } },
      expectation: schema.additionalProperties === false && !declared ? ('reject' as const) : ('either' as const),
      description: `extra field ${JSON.stringify(name)}`,
    };
  });
}

function deepNesting(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

function bodyRequired(schema: JsonSchema | undefined): boolean {
  return schema !== undefined && schema.type === 'object' && !schema.nullable;
}

/** Plans for a JSON body: the valid ones, and the ones broken in exactly one way. */
export function bodyPlans(schema: JsonSchema | undefined, hints: GenerationHints): { valid: fc.Arbitrary<BodyPlan>; broken: fc.Arbitrary<BodyPlan> } {
  const json = (body: SerializedBody, expectation: Expectation, description: string): BodyPlan => ({ payload: serializeBody(body), contentType: 'application/json', expectation, description });
  if (!schema || Object.keys(schema).length === 0) return bodylessPlans(schema !== undefined);
  const valid = validValue(schema, hints);
  const required = bodyRequired(schema);
  const wholeBody: Array<fc.Arbitrary<BodyPlan>> = [
    fc.constantFrom<[string, Expectation]>(['[]', 'reject'], ['"a string"', 'reject'], ['12', 'reject'], ['true', 'reject'], ['null', required ? 'reject' : 'either']).map(([text, expectation]) => ({
      payload: text,
      contentType: 'application/json',
      expectation: schema.type === 'object' ? expectation : 'either',
      description: `body ${text}`,
    })),
    fc.constantFrom('{"amount": 12,', "{'a': 1}", '{"a": NaN}', '{"a": 1} trailing', '{"a": 01}', '\ufeff{}', '{"a": "\\x41"}', '{"a": "\\ud800"', '/* comment */ {}').map((text) => ({
      payload: text,
      contentType: 'application/json',
      expectation: 'reject' as const,
      description: `broken JSON ${JSON.stringify(text)}`,
    })),
    fc.constant({ payload: '', contentType: 'application/json', expectation: required ? ('reject' as const) : ('either' as const), description: 'empty body' }),
    fc.constantFrom(20, 5000).map((depth) => ({ payload: deepNesting(depth), contentType: 'application/json', expectation: 'reject' as const, description: `arrays nested ${depth} deep` })),
    valid.chain((value) =>
      fc
        .constantFrom<[string, Expectation]>(
          ['text/plain', 'reject'],
          ['application/xml', 'reject'],
          ['multipart/form-data; boundary=fuzz', 'reject'],
          ['application/octet-stream', 'reject'],
          ['application/x-www-form-urlencoded', 'either'],
          ['application/json; charset=utf-16', 'either'],
          ['APPLICATION/JSON', 'either'],
          ['application/json-patch+json', 'reject'],
        )
        .map(([contentType, expectation]) => ({ payload: JSON.stringify(value), contentType, expectation, description: `valid JSON sent as ${contentType}` })),
    ),
    fc.constant({ payload: JSON.stringify({ padding: 'x'.repeat(oversizedBodyBytes) }), contentType: 'application/json', expectation: 'reject' as const, description: 'body over the 1 MiB limit' }),
    valid.map((value) => {
      const text = JSON.stringify(value);
      return { payload: text, contentType: 'application/json', headers: { 'content-length': String(Math.max(1, text.length - 3)) }, expectation: 'reject' as const, description: 'Content-Length shorter than the body' };
    }),
    valid.filter((value) => jsonTypeOf(value) === 'object').map((value) => {
      // Bytes that are not UTF-8 at all, inside an otherwise valid body.
      const text = JSON.stringify(value);
      const bytes = Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.from(`${text.length > 2 ? ',' : ''}"bytes":"`), Buffer.from([0xff, 0xfe, 0xc0, 0xae, 0xed, 0xa0, 0x80]), Buffer.from('"}')]);
      return { payload: bytes, contentType: 'application/json', expectation: schema.additionalProperties === false ? ('reject' as const) : ('either' as const), description: 'invalid UTF-8 bytes in an extra field' };
    }),
  ];
  const fieldLevel = valid.chain((value) => {
    const mutations = [fieldMutation(schema, value), extraField(schema, value)].filter((candidate): candidate is fc.Arbitrary<ValueMutation> => candidate !== undefined);
    if (mutations.length === 0) return fc.constant(json({ value }, 'either', 'valid body'));
    return fc.oneof(...mutations).map((mutation) => json(mutation.body, mutation.expectation, mutation.description));
  });
  return {
    valid: valid.map((value) => json({ value }, 'either', '')),
    broken: fc.oneof({ weight: 3, arbitrary: fieldLevel }, { weight: 1, arbitrary: fc.oneof(...wholeBody) }),
  };
}

/** Routes that take no body (or any body: a channel's notification). */
function bodylessPlans(takesAnything: boolean): { valid: fc.Arbitrary<BodyPlan>; broken: fc.Arbitrary<BodyPlan> } {
  return {
    valid: fc.constant<BodyPlan>({ payload: undefined, contentType: undefined, expectation: 'either', description: '' }),
    broken: fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((value) => ({ payload: JSON.stringify(value), contentType: 'application/json', expectation: 'either' as const, description: 'an unexpected JSON body' })),
      fc.constantFrom('text/plain', 'application/xml', 'application/octet-stream').map((contentType) => ({
        payload: '<x>not json</x>',
        contentType,
        expectation: takesAnything ? ('either' as const) : ('reject' as const),
        description: `a ${contentType} body`,
      })),
      fc.constant<BodyPlan>({ payload: '{"broken":', contentType: 'application/json', expectation: 'reject', description: 'broken JSON' }),
      fc.constant<BodyPlan>({ payload: JSON.stringify({ padding: 'x'.repeat(oversizedBodyBytes) }), contentType: 'application/json', expectation: 'reject', description: 'body over the 1 MiB limit' }),
    ),
  };
}
