/**
 * HTML for the operator console, escaped by default: {@link html} is the only way pages are
 * written, and every value interpolated into it is escaped with `escape-html` unless it is itself
 * {@link Html} made by `html` (a fragment already escaped). There is no raw-string escape hatch
 * outside this file; {@link raw} is used here only for constants.
 */
import escapeHtml from 'escape-html';
import { formatMajor, type AmountMinor } from '../kernel/money.ts';

/** A fragment of HTML whose interpolations are already escaped. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What may be interpolated: text (escaped), fragments, lists of either, or nothing. */
export type Interpolation = Html | string | number | boolean | null | undefined | Interpolation[];

function render(v: Interpolation): string {
  if (v === null || v === undefined || v === false || v === true) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/** The tagged template of every page: `html\`<p>${text}</p>\`` escapes `text`. */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Digits grouped by thousands: `1500000.5` → `1,500,000.50`. */
function grouped(major: string): string {
  const [whole = '0', frac] = major.split('.');
  const g = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? `${g}.00` : `${g}.${frac}`;
}

/** An amount in major units with its currency: `1,500.50 NGN` (kernel/money.ts converts). */
export function money(amountMinor: number, currency: string): Html {
  return html`<span class="money"
    >${grouped(formatMajor(amountMinor as AmountMinor))}&nbsp;<abbr>${currency}</abbr></span
  >`;
}

/** An instant for people: ISO 8601 to the second in UTC, in a `<time>` element. */
export function when(at: number | string | null | undefined): Html {
  if (at === null || at === undefined) return html`<span class="muted">—</span>`;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return html`${String(at)}`;
  const iso = d.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')}Z</time>`;
}

/** A state as a coloured badge (the class is one of a closed set of words). */
export function badge(state: string): Html {
  const cls = /^[a-z_]+$/.test(state) ? state : 'other';
  return html`<span class="badge state-${cls}">${state.replace(/_/g, ' ')}</span>`;
}

/** A URL path with query parameters (values encoded), for links and form targets. */
export function href(
  path: string,
  query: Record<string, string | number | undefined> = {},
): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

/** One path segment, encoded (ids and keys come from data). */
export const seg = (s: string): string => encodeURIComponent(s);
