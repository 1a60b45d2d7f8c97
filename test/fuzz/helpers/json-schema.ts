import fc from 'fast-check';

/**
 * The part of JSON Schema (OpenAPI 3.0 flavour, as fastify-type-provider-zod
 * writes it from Fen's zod schemas) that the fuzzer reads, and arbitraries that
 * produce values the schema accepts. The fuzzer starts from a valid value and
 * breaks it in one place, so a rejection can be blamed on that one change.
 */
export interface JsonSchema {
  type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null';
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean | number;
  exclusiveMaximum?: boolean | number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  nullable?: boolean;
  default?: unknown;
}

/**
 * Where the generator can do better than the schema says: an id pattern is
 * answered from the ids that really exist now and then, and an operation may
 * pin a field to the values that get it past the service's own checks.
 */
export interface GenerationHints {
  /** Real ids by prefix (`pay`, `mch`, …), read when the value is generated. */
  idsByPrefix?: (prefix: string) => readonly string[];
  /** Arbitraries for fields by dotted path (`method`, `contact.email`), used instead of the schema's. */
  fields?: Record<string, fc.Arbitrary<unknown>>;
}

/** Strings long enough to be interesting but short enough to keep each request cheap. */
const freeStringLengthMax = 24;
const arrayLengthMax = 4;

export function idPrefixOfPattern(pattern: string | undefined): string | undefined {
  return pattern ? /^\^([a-z]{3})_\[0-9a-z\]\{26\}\$$/.exec(pattern)?.[1] : undefined;
}

function lowerBound(schema: JsonSchema): number | undefined {
  if (typeof schema.exclusiveMinimum === 'number') return schema.exclusiveMinimum + (schema.type === 'integer' ? 1 : Number.EPSILON);
  if (schema.minimum === undefined) return undefined;
  if (schema.exclusiveMinimum === true) return schema.minimum + (schema.type === 'integer' ? 1 : Number.EPSILON);
  return schema.minimum;
}

function upperBound(schema: JsonSchema): number | undefined {
  if (typeof schema.exclusiveMaximum === 'number') return schema.exclusiveMaximum - (schema.type === 'integer' ? 1 : Number.EPSILON);
  if (schema.maximum === undefined) return undefined;
  if (schema.exclusiveMaximum === true) return schema.maximum - (schema.type === 'integer' ? 1 : Number.EPSILON);
  return schema.maximum;
}

export function numericBounds(schema: JsonSchema): { min: number | undefined; max: number | undefined } {
  return { min: lowerBound(schema), max: upperBound(schema) };
}

function validString(schema: JsonSchema, hints: GenerationHints): fc.Arbitrary<string> {
  if (schema.enum) return fc.constantFrom(...(schema.enum as string[]));
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Number.MAX_SAFE_INTEGER;
  const fits = (value: string) => value.length >= min && value.length <= max;
  if (schema.format === 'ipv4') return fc.ipV4();
  if (schema.format === 'ipv6') return fc.ipV6();
  if (schema.format === 'uri') return fc.webUrl({ validSchemes: ['https', 'http'] }).filter(fits);
  const prefix = idPrefixOfPattern(schema.pattern);
  if (schema.pattern) {
    const matching = fc.stringMatching(new RegExp(schema.pattern), { size: 'small' }).filter(fits);
    if (!prefix || !hints.idsByPrefix) return matching;
    const lookup = hints.idsByPrefix;
    // Half the time an id that exists, half the time one that looks right and does not.
    return fc.tuple(fc.boolean(), fc.nat(), matching).map(([real, index, absent]) => {
      const known = lookup(prefix);
      return real && known.length > 0 ? (known[index % known.length] as string) : absent;
    });
  }
  const length = { minLength: min, maxLength: Math.max(min, Math.min(max, freeStringLengthMax)) };
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ ...length, unit: 'grapheme-ascii' }) },
    { weight: 1, arbitrary: fc.string({ ...length, unit: 'grapheme' }) },
    // Any code point at all: controls, NUL and lone surrogates in a body that is otherwise valid.
    { weight: 1, arbitrary: fc.string({ ...length, unit: 'binary' }) },
  ).filter(fits);
}

function validNumber(schema: JsonSchema): fc.Arbitrary<number> {
  const { min, max } = numericBounds(schema);
  if (schema.enum) return fc.constantFrom(...(schema.enum as number[]));
  if (schema.type === 'integer') {
    return fc.integer({ min: Math.ceil(min ?? -1_000_000), max: Math.floor(max ?? 1_000_000) });
  }
  return fc.double({ min: min ?? -1e9, max: max ?? 1e9, noNaN: true, noDefaultInfinity: true });
}

function validObject(schema: JsonSchema, hints: GenerationHints, path: string): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const names = Object.keys(properties);
  if (names.length === 0) {
    const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {};
    return fc.dictionary(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme-ascii' }), validValue(extra, hints, `${path}*`), { maxKeys: 3 });
  }
  const required = new Set(schema.required ?? []);
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const name of names) fields[name] = validValue(properties[name] as JsonSchema, hints, path ? `${path}.${name}` : name);
  // Optional fields come and go, so both their presence and their absence reach the service.
  return fc.record(fields, { requiredKeys: names.filter((name) => required.has(name)) });
}

/** An arbitrary of values the schema accepts (as far as JSON Schema can say: zod refinements may still refuse some). */
export function validValue(schema: JsonSchema, hints: GenerationHints = {}, path = ''): fc.Arbitrary<unknown> {
  const pinned = hints.fields?.[path];
  if (pinned) return pinned;
  const base = validValueOfType(schema, hints, path);
  return schema.nullable ? fc.oneof({ weight: 4, arbitrary: base }, { weight: 1, arbitrary: fc.constant(null) }) : base;
}

function validValueOfType(schema: JsonSchema, hints: GenerationHints, path: string): fc.Arbitrary<unknown> {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((alternative) => validValue(alternative, hints, path)));
  switch (schema.type) {
    case 'string':
      return validString(schema, hints);
    case 'integer':
    case 'number':
      return validNumber(schema);
    case 'boolean':
      return schema.enum ? fc.constantFrom(...(schema.enum as boolean[])) : fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const minLength = schema.minItems ?? 0;
      const maxLength = Math.max(minLength, Math.min(schema.maxItems ?? arrayLengthMax, arrayLengthMax));
      return fc.array(validValue(schema.items ?? {}, hints, `${path}[]`), { minLength, maxLength });
    }
    case 'object':
      return validObject(schema, hints, path);
    default:
      // No type at all: anything JSON.
      return fc.jsonValue({ maxDepth: 2 });
  }
}

export function jsonTypeOf(value: unknown): 'null' | 'array' | 'object' | 'string' | 'boolean' | 'integer' | 'number' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as 'object' | 'string' | 'boolean';
}

/**
 * True when the schema certainly refuses a value of this JSON type, so a request
 * carrying it must be rejected; false when it might accept it (no type, a union,
 * a number where an integer is declared and the value is whole).
 */
export function typeCertainlyRefused(schema: JsonSchema, valueType: ReturnType<typeof jsonTypeOf>): boolean {
  if (schema.anyOf || schema.oneOf || schema.type === undefined) return false;
  if (valueType === 'null') return !schema.nullable;
  if (schema.type === valueType) return false;
  if (schema.type === 'number' && valueType === 'integer') return false;
  return true;
}
