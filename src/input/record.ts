/**
 * The one record parser: which fields a record has and what each holds, for a CSV row under its
 * header and for a JSON object alike. A record kind (charge, payout, subscription) is described
 * once as a {@link RecordSpec}: its fields, the zod schema over their raw strings (built from
 * `fields.ts`), the columns a header must have, and any cross-field rule.
 *
 * The source decides the wording. A CSV problem is about a column of a header or a row (the caller
 * attaches the line); a JSON problem is about a field of the body: a JSON body without `card_token`
 * gets "card_token is required", never "required column … is missing from the header".
 *
 * Names are matched as each source is written by people: CSV headers come from spreadsheets, so
 * they are trimmed and case-insensitive; JSON field names are exact. `meta_*` names are kept as
 * metadata in both, the prefix matched case-insensitively.
 */
import { z } from 'zod';
import {
  META_PREFIX,
  metaKeyProblem,
  metaValueProblem,
  NO_CONTROL,
  shown,
  type FieldNoun,
} from './fields.ts';
import { withoutCardNumbers } from '../kernel/card-number.ts';

/** Where a record comes from. */
export type Source = 'json' | 'csv';

/** One problem of a record, named by its canonical field (`amount`, `meta_region`), or by the
 * name as written for an unknown one. */
export interface Issue {
  name?: string;
  message: string;
}

/** Raw values by field name; undefined when blank or absent. */
export type RawValues = Record<string, string | undefined>;

/** A record kind: its fields, their schema, and how a header must look. */
export interface RecordSpec<F extends string = string, S extends z.ZodType = z.ZodType> {
  /** What one record is, for messages: `charge`, `payout`, `subscription`. */
  kind: string;
  /** Field names in documented order (lower case). */
  fields: readonly F[];
  /** Columns a CSV header must have. (A JSON body missing one gets the field's "is required".) */
  requiredColumns: readonly F[];
  /** An object schema over {@link RawValues}; its issues' first path element names the field. */
  schema: S;
  /** Trim values before validating, and drop blank CSV meta values; otherwise only a blank value
   * counts as absent and every other value is validated as written. */
  trim?: boolean;
  /** A kind whose fields are often sent by mistake: an unknown name that belongs to it says so. */
  related?: { kind: string; fields: readonly string[] };
  /** Rules spanning fields, on the raw values; one issue per field at most is kept. */
  crossChecks?: (values: Readonly<RawValues>) => Issue[];
  /** Fields a JSON body may also give as a number (taken as its decimal string). */
  jsonNumbers?: readonly F[];
}

/** Where each value of a record goes. `ignored` marks an unknown name (already an issue). */
export type Slot =
  { kind: 'known'; field: string } | { kind: 'meta'; key: string } | { kind: 'ignored' };

/** A header (CSV) or the names of a body (JSON) mapped onto a record kind. */
export interface FieldLayout {
  /** One slot per value, in source order. */
  slots: readonly Slot[];
  /** Canonical name per value (`amount`, `meta_region`), for error reports. */
  names: readonly string[];
  /** Meta keys (without `meta_`) in source order: the results file echoes them in this order. */
  metaKeys: readonly string[];
}

function noun(source: Source): FieldNoun {
  return source === 'csv' ? 'column' : 'field';
}

/**
 * Maps names onto the fields of `spec`. Always returns a layout; a CSV header with issues must
 * not be used, while a JSON body's layout still serves to report its other problems.
 *
 * CSV: names are trimmed and matched case-insensitively; an empty or duplicated name, a control
 * character, an unknown name or a missing required column is an issue. A header with no known
 * column at all gets one issue that says so, rather than one per column, because it is usually a
 * file without a header or of another kind. JSON: names are exact; a missing field is left to the
 * field's own "is required".
 */
export function resolveNames(
  spec: RecordSpec,
  names: readonly string[],
  source: Source,
): { layout: FieldLayout; issues: Issue[] } {
  const csv = source === 'csv';
  const word = noun(source);
  const known = new Set<string>(spec.fields);
  const related = new Set<string>(spec.related?.fields ?? []);
  const issues: Issue[] = [];
  const slots: Slot[] = [];
  const canonical: string[] = [];
  const metaKeys: string[] = [];
  const seen = new Map<string, number>();
  let knownCount = 0;

  names.forEach((raw, index) => {
    const name = csv ? raw.trim() : raw;
    const lower = name.toLowerCase();
    const position = index + 1;
    let controlled = false;
    if (csv && name === '') {
      issues.push({ message: `header column ${position} has no name` });
    } else if (csv && !NO_CONTROL.test(name)) {
      controlled = true;
      issues.push({ name, message: `header column ${position} contains a control character` });
    }
    // JSON names are unique as written; only meta names can name one thing twice: `meta_x` and
    // `META_x`, and `meta_Plan` and `meta_plan`, which a CSV header refuses as one column twice
    // (names ignoring case), so a body must too, or it is read as two keys where a file is refused.
    const seenAs = csv || lower.startsWith(META_PREFIX) ? lower : name;
    const previous = seen.get(seenAs);
    if (name !== '' && previous !== undefined) {
      issues.push({
        name,
        message: csv
          ? `column "${shown(name)}" appears twice in the header (columns ${previous} and ${position})`
          : `field "${shown(name)}" repeats meta key "${shown(name.slice(META_PREFIX.length))}"`,
      });
    }
    seen.set(seenAs, position);

    const field = csv ? lower : name;
    if (known.has(field)) {
      knownCount++;
      slots.push({ kind: 'known', field });
      canonical.push(field);
    } else if (lower.startsWith(META_PREFIX)) {
      const key = name.slice(META_PREFIX.length);
      const problem = controlled ? undefined : metaKeyProblem(word, name, key);
      if (problem !== undefined) issues.push({ name, message: problem });
      slots.push({ kind: 'meta', key });
      canonical.push(`${META_PREFIX}${key}`);
      metaKeys.push(key);
    } else {
      if (name !== '' || !csv) {
        const hint = related.has(field)
          ? csv
            ? ` ("${field}" is a ${spec.related?.kind} column: is this a ${spec.related?.kind} file?)`
            : ` ("${field}" is a ${spec.related?.kind} field)`
          : '';
        issues.push({
          name,
          message: `unknown ${word} "${shown(name)}"${hint}; prefix your own ${word}s with "${META_PREFIX}"`,
        });
      }
      slots.push({ kind: 'ignored' });
      canonical.push(name);
    }
  });

  const layout: FieldLayout = { slots, names: canonical, metaKeys };
  if (!csv) return { layout, issues };

  if (knownCount === 0) {
    // Usually the first row of a file without a header: its cells are data, a charge's or a
    // subscription's card token among them, and a card token is never repeated in a message
    // (fields.ts), whatever it looks like. So the cells are counted, never quoted.
    const count = `${names.length} column${names.length === 1 ? '' : 's'}`;
    const message =
      `the first line is not a ${spec.kind} header: expected columns ${spec.fields.join(', ')} ` +
      `(and optional ${META_PREFIX}*), found ${count} with no known name (is the header line missing?)`;
    return { layout, issues: [{ message }] };
  }
  for (const column of spec.requiredColumns) {
    if (!seen.has(column)) {
      issues.push({
        name: column,
        message: `required column "${column}" is missing from the header`,
      });
    }
  }
  return { layout, issues };
}

/** A record's validated fields and meta, or its problems with the raw values and meta as read (so
 * a caller can still use a well-formed reference of a bad row, or show its meta values). */
export type ParsedFields<S extends z.ZodType> =
  | { ok: true; data: z.output<S>; meta: Record<string, string> }
  | { ok: false; issues: Issue[]; values: RawValues; meta: Record<string, string> };

const NO_SKIP: ReadonlySet<number> = new Set();
const NO_NAMES: ReadonlySet<string> = new Set();
const NO_ISSUES: readonly Issue[] = [];

/** Whitespace-only counts as absent: a required field that is blank is "required", not "invalid". */
function present(value: string): string | undefined {
  return value.trim() === '' ? undefined : value;
}

function trimmed(value: string): string | undefined {
  const v = value.trim();
  return v === '' ? undefined : v;
}

/**
 * Validates one record: `values` are aligned with `layout.slots` (a CSV row already counted
 * against its header, or a body's values). `skip` holds value indexes the caller has already
 * refused (an oversized CSV field, a JSON value that is not a string): they are neither validated
 * nor reported again.
 */
export function parseRecord<S extends z.ZodType>(
  spec: RecordSpec<string, S>,
  layout: FieldLayout,
  values: readonly string[],
  source: Source,
  skip: ReadonlySet<number> = NO_SKIP,
): ParsedFields<S> {
  const normalise = spec.trim === true ? trimmed : present;
  const trimMeta = spec.trim === true && source === 'csv';
  const raw: RawValues = {};
  const meta: Record<string, string> = {};
  let metaIssues: Issue[] | undefined;
  let skipped: Set<string> | undefined;
  for (let i = 0; i < layout.slots.length; i++) {
    const slot = layout.slots[i];
    const value = values[i] ?? '';
    if (slot === undefined || slot.kind === 'ignored') continue;
    if (slot.kind === 'known') {
      if (skip.has(i)) (skipped ??= new Set()).add(slot.field);
      else raw[slot.field] = normalise(value);
    } else if (skip.has(i)) {
      meta[slot.key] = '';
    } else {
      const v = trimMeta ? value.trim() : value;
      if (trimMeta && v === '') continue;
      const problem = metaValueProblem(slot.key, v);
      if (problem !== undefined) {
        (metaIssues ??= []).push({ name: `${META_PREFIX}${slot.key}`, message: problem });
      }
      meta[slot.key] = v;
    }
  }
  return validateValues(spec, raw, meta, skipped, metaIssues);
}

/**
 * Validates values already keyed by field (blank ones undefined). Reports the first problem per
 * field: zod reports every failed check, and a person fixing a file needs the first one. Fields
 * in `skipped` were refused by the caller, so their "is required" is not news.
 */
export function validateValues<S extends z.ZodType>(
  spec: RecordSpec<string, S>,
  values: RawValues,
  meta: Record<string, string>,
  skipped: ReadonlySet<string> = NO_NAMES,
  extra: readonly Issue[] = NO_ISSUES,
): ParsedFields<S> {
  const parsed = spec.schema.safeParse(values);
  if (parsed.success && spec.crossChecks === undefined && extra.length === 0) {
    return { ok: true, data: parsed.data, meta };
  }
  const issues: Issue[] = [];
  const reported = new Set<string>();
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '');
      if (reported.has(name) || skipped.has(name)) continue;
      reported.add(name);
      issues.push(withoutOwnCardNumber({ name, message: issue.message }, values));
    }
  }
  // A field already refused by its own schema is not reported twice.
  for (const issue of spec.crossChecks?.(values) ?? []) {
    const name = issue.name ?? '';
    if (reported.has(name) || skipped.has(name)) continue;
    reported.add(name);
    issues.push(withoutOwnCardNumber(issue, values));
  }
  issues.push(...extra);
  if (!parsed.success || issues.length > 0) return { ok: false, issues, values, meta };
  return { ok: true, data: parsed.data, meta };
}

/**
 * The issue of a field whose value holds a card number, with that value quoted without it
 * (kernel/card-number.ts), however the field's schema worded the message: every message of
 * `input/` quotes through `shown`, and this keeps a schema defined elsewhere (a subscription's
 * `interval_count`) from echoing a card number either, from JSON and CSV alike.
 */
function withoutOwnCardNumber(issue: Issue, values: Readonly<RawValues>): Issue {
  const raw = issue.name === undefined ? undefined : values[issue.name];
  if (raw === undefined) return issue;
  const safe = withoutCardNumbers(raw);
  return safe === raw ? issue : { ...issue, message: issue.message.split(raw).join(safe) };
}

/** The field an issue names when it is about the whole body (not an object, nothing in it). */
export const WHOLE_BODY = '(body)';

/** The issue of a body that is not a JSON object, on every route that reads one. */
export const NOT_AN_OBJECT = {
  field: WHOLE_BODY,
  message: 'the body must be a JSON object',
} as const satisfies FieldIssue;

/** A problem of a JSON body: `field` names the field, when it is about one. */
export interface FieldIssue {
  field?: string;
  message: string;
}

/** A problem of a CSV header or row before the line is attached: `column` names the column. */
export interface RowIssue {
  column?: string;
  message: string;
}

/** {@link Issue}s in the words of a JSON body. An unknown name is shown as messages quote it. */
export function asFieldIssues(issues: readonly Issue[]): FieldIssue[] {
  return issues.map((i) =>
    i.name === undefined ? { message: i.message } : { field: shown(i.name), message: i.message },
  );
}

/** {@link Issue}s in the words of a CSV file. An unknown name is shown as messages quote it. */
export function asRowIssues(issues: readonly Issue[]): RowIssue[] {
  return issues.map((i) =>
    i.name === undefined ? { message: i.message } : { column: shown(i.name), message: i.message },
  );
}

/** Options of {@link parseJsonRecord}. */
export interface JsonRecordOptions {
  /** Names handled by the caller (an envelope's `type`, `key`): skipped here. */
  reserved?: readonly string[];
  /**
   * A field holding an object of meta key → value (`metadata`), merged with the `meta_*` fields; a
   * key in both is refused unless it is the same key with the same value.
   */
  metaObject?: string;
}

/**
 * Validates a JSON body as one record of `spec`: the fields as strings (or numbers, where the
 * spec allows), `meta_*` fields as strings. Every problem is reported at once, by field.
 */
export function parseJsonRecord<S extends z.ZodType>(
  spec: RecordSpec<string, S>,
  body: unknown,
  options: JsonRecordOptions = {},
):
  | { ok: true; data: z.output<S>; meta: Record<string, string> }
  | { ok: false; issues: FieldIssue[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return {
      ok: false,
      issues: [NOT_AN_OBJECT],
    };
  }
  const reserved = new Set(options.reserved ?? []);
  const numbers = new Set<string>(spec.jsonNumbers ?? []);
  const names: string[] = [];
  const values: string[] = [];
  const notString = new Set<number>();
  const objectIssues: Issue[] = [];
  const objectMeta: Record<string, string> = {};
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (reserved.has(name)) continue;
    if (options.metaObject !== undefined && name === options.metaObject) {
      if (!readMetaObject(value, objectMeta)) {
        objectIssues.push({
          name,
          message: `${name} must be an object of strings with keys of letters, digits, "_" or "-"`,
        });
      }
      continue;
    }
    if (typeof value === 'string') values.push(value);
    else if (typeof value === 'number' && numbers.has(name)) values.push(String(value));
    else {
      notString.add(values.length);
      values.push('');
    }
    names.push(name);
  }
  const { layout, issues } = resolveNames(spec, names, 'json');
  issues.push(...objectIssues);
  for (const index of notString) {
    if (layout.slots[index]?.kind === 'ignored') continue;
    issues.push({ name: names[index], message: `${names[index]} must be a string` });
  }
  const parsed = parseRecord(spec, layout, values, 'json', notString);
  if (!parsed.ok) issues.push(...parsed.issues);
  else if (options.metaObject !== undefined)
    issues.push(...metaClashes(options.metaObject, objectMeta, parsed.meta));
  if (!parsed.ok || issues.length > 0) return { ok: false, issues: asFieldIssues(issues) };
  return { ok: true, data: parsed.data, meta: { ...objectMeta, ...parsed.meta } };
}

/**
 * A `meta_*` field that names a key of the meta object (`metaObject`) again, ignoring case as
 * meta names are compared, is refused unless it is the same key with the same value: which of
 * two values the caller meant cannot be told, and a key in two cases is two keys where a file
 * would be refused.
 */
function metaClashes(
  metaObject: string,
  objectMeta: Readonly<Record<string, string>>,
  fieldMeta: Readonly<Record<string, string>>,
): Issue[] {
  const byLower = new Map(Object.keys(objectMeta).map((k) => [k.toLowerCase(), k]));
  const issues: Issue[] = [];
  for (const [key, value] of Object.entries(fieldMeta)) {
    const other = byLower.get(key.toLowerCase());
    if (other === undefined || (other === key && objectMeta[other] === value)) continue;
    const name = `${META_PREFIX}${key}`;
    issues.push({
      name,
      message: `${shown(name)} gives meta key "${shown(key)}" again after ${metaObject}.${shown(other)} (${other === key ? 'another value' : 'in another case'}): give it once`,
    });
  }
  return issues;
}

/** Copies an object of meta key → string into `into`; false when it is not one. */
function readMetaObject(value: unknown, into: Record<string, string>): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [key, v] of entries) {
    if (typeof v !== 'string') return false;
    if (metaKeyProblem('field', key, key) !== undefined) return false;
    if (metaValueProblem(key, v) !== undefined) return false;
  }
  for (const [key, v] of entries) into[key] = v as string;
  return true;
}

/**
 * The JSON body {@link parseJsonRecord} accepts for `spec`, as a zod schema for documentation
 * (the OpenAPI document): the spec's own field schemas (the rules are written once, here and in
 * fields.ts), a number where the spec takes one, `meta_*` fields as strings, nothing else, plus
 * the fields of `extra` (an envelope's `type`, a `metadata` object); `id` names it as a component
 * of the OpenAPI document. Describes; the parser
 * validates (with messages no schema can give, e.g. a payout field sent on a charge).
 */
export function jsonBodySchema(
  spec: RecordSpec<string, z.ZodObject>,
  extra: Readonly<Record<string, z.ZodType>> = {},
  id?: string,
  crossChecks?: Readonly<Record<string, unknown>>,
): z.ZodObject {
  const shape: Record<string, z.ZodType> = { ...extra };
  const numbers = new Set<string>(spec.jsonNumbers ?? []);
  const fields: Readonly<Record<string, z.ZodType>> = spec.schema.shape;
  for (const [name, field] of Object.entries(fields)) {
    const optional = field.safeParse(undefined).success;
    const value = numbers.has(name) ? z.union([field, z.number()]) : field;
    shape[name] = optional ? value.optional() : value;
  }
  return z.strictObject(shape).meta({
    patternProperties: { [`^${META_PREFIX}`]: { type: 'string' } },
    description: `Your own metadata as ${META_PREFIX}<key> string fields.`,
    // A named component keeps `patternProperties` (inline schemas are converted the 3.0 way).
    ...(id !== undefined ? { id } : {}),
    // What the spec's crossChecks enforce, as JSON Schema keywords, where they can say it.
    ...crossChecks,
  });
}
