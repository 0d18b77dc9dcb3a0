/**
 * What every route's `schema` is made of: the one error shape, list pages, path parameters, and
 * the marker for bodies a capability's own parser validates. A route declares
 * `schema: { params, querystring, body, response, tags, summary }` from zod (http/openapi.ts
 * turns them into the OpenAPI document at `/openapi.json`); a route that must stay out of the
 * document (an HTML page, static assets) says `schema: { hide: true }`.
 *
 * A new route (a route file under routes/, a console page) follows the same pattern:
 *
 * ```ts
 * app.get('/things', {
 *   schema: { tags: ['things'], summary: 'Things, newest first', querystring: thingQuery,
 *             response: { 200: pageOf(thingSchema), ...errorResponses(422) } },
 *   config: { invalid: { code: 'invalid_query', message: 'the query is invalid' } }, // optional
 * }, handler);
 * app.get('/console/page', { schema: { hide: true } }, htmlHandler); // out of the document
 * ```
 *
 * test/integration/openapi.test.ts fails for a registered route missing from the document, or an
 * operation without tags, summary, a success response schema or the error shape.
 *
 * Validation: querystring, params and body schemas are checked by fastify-type-provider-zod's
 * validator before the handler runs, and a failure answers in the product's error shape
 * (errors.ts `validationFailure`). A body marked {@link parsedByHandler} is only described: the
 * capability's record parser validates it with field rules that the schema is derived from, so
 * the rules are written once and its messages (hints about the other payment type, `meta_`
 * prefixes) are kept.
 */
import { z } from 'zod';

/** `{ error: { code, message, details? } }`: every error of every route (errors.ts). */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().describe('stable, machine-readable: invalid_query, not_found, …'),
      message: z.string().describe('for people'),
      details: z
        .unknown()
        .optional()
        .describe(
          'validation problems as [{ field, message }] (a batch file: [{ line, column?, message }])',
        ),
    }),
  })
  .meta({ id: 'Error', description: 'The one error shape of every route' });

/** Error responses for `statuses`, plus 401 and 503 (every guarded route can answer them). */
export function errorResponses<S extends number>(
  ...statuses: S[]
): Record<S | 401 | 503, typeof errorSchema> {
  const entries = [401, 503, ...statuses].map((s) => [s, errorSchema] as const);
  return Object.fromEntries(entries) as Record<S | 401 | 503, typeof errorSchema>;
}

/** `limit` and `cursor` of every cursor-paginated list (GET /payments, /subscriptions, /batches). */
export function pageQuery(maxLimit: number, defaultLimit: number, cursorMax = 2_000) {
  return {
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(maxLimit)
      .default(defaultLimit)
      .describe(`page size, 1-${maxLimit}`),
    cursor: z.string().min(1).max(cursorMax).optional().describe("the previous page's next_cursor"),
  };
}

/** A page of a cursor-paginated list: `{ data, next_cursor }` (null on the last page). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    next_cursor: z
      .string()
      .nullable()
      .describe('pass as cursor for the next page; null at the end'),
  });
}

/** A path parameter: any string; the handler answers 404 for one that names nothing. */
export const idParam = (name: string, what: string) =>
  z.object({ [name]: z.string().describe(what) });

const parsedByHandlerSet = new WeakSet<z.ZodType>();

/**
 * Marks a body schema as a description only: the validator lets the body through and the handler's
 * parser (derived from the same field rules) validates it. Returns the schema.
 */
export function parsedByHandler<T extends z.ZodType>(schema: T): T {
  parsedByHandlerSet.add(schema);
  return schema;
}

/** Whether {@link parsedByHandler} marked `schema`. */
export function isParsedByHandler(schema: unknown): boolean {
  return schema instanceof z.ZodType && parsedByHandlerSet.has(schema);
}

const optionalBodySet = new WeakSet<z.ZodType>();

/** Marks a body schema as optional: the request may come without a body (documented so). */
export function optionalBody<T extends z.ZodType>(schema: T): T {
  optionalBodySet.add(schema);
  return schema;
}

/** Whether {@link optionalBody} marked `schema`. */
export function isOptionalBody(schema: unknown): boolean {
  return schema instanceof z.ZodType && optionalBodySet.has(schema);
}

/** How a route answers a request its zod schemas refuse (route `config.invalid`, errors.ts). */
export interface InvalidAnswer {
  status?: number;
  code: string;
  message: string;
  /** Also name each problem's field as `parameter` (POST /batches has always said so). */
  parameterAlias?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The answer to a request the route's zod schemas refuse; defaults per part (errors.ts). */
    invalid?: InvalidAnswer;
  }
}
