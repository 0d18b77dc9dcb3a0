/** JSON errors `{ error: { code, message, details? } }` for every route. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/**
 * The error body. Its message and every string in its details go through `withoutCardNumbers`:
 * an answer that repeats what the caller sent (a key in a path, an unknown query name, a URL) never
 * repeats a card number in it, whichever route built the message.
 */
export function apiError(code: string, message: string, details?: unknown): ApiErrorBody {
  return {
    error: {
      code,
      message: withoutCardNumbers(message),
      ...(details !== undefined
        ? { details: mapStrings(details, withoutCardNumbers, { keys: true }) }
        : {}),
    },
  };
}

/**
 * Fastify's own errors (body parsing, routing) in the product's vocabulary: never an `FST_ERR_*`
 * code, never the request URL echoed back. Unknown framework errors are a plain `bad_request`.
 */
import { WHOLE_BODY } from '../input/record.ts';
import { mapStrings, withoutCardNumbers } from '../kernel/card-number.ts';

const FRAMEWORK_ERRORS: Readonly<Record<string, { code: string; message: string }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json', message: 'the body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'invalid_json',
    message: 'the body is empty; send a JSON object',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    message: 'unsupported Content-Type: send application/json (text/csv for POST /batches)',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: 'the body is too large' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'bad_request',
    message: 'the body does not match its Content-Length',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'uri_too_long',
    message:
      'a path parameter is too long (payment keys, references and ids are at most 100 characters)',
  },
  FST_ERR_BAD_URL: { code: 'bad_request', message: 'the URL is malformed' },
};

/** The product's error body for a framework error, or undefined when `code` is not one. */
export function frameworkError(code: string | undefined): ApiErrorBody | undefined {
  if (code === undefined || !code.startsWith('FST_')) return undefined;
  const known = FRAMEWORK_ERRORS[code];
  return known
    ? apiError(known.code, known.message)
    : apiError('bad_request', 'the request could not be processed');
}

/**
 * What node's HTTP parser refuses before fastify sees a request (fastify's `clientErrorHandler`),
 * in the one error shape: a URL and headers over node's limit (16 KiB by default: a long query
 * string), a request that did not arrive in time, bytes that are not HTTP.
 */
export function connectionError(code: string | undefined): { status: number; body: ApiErrorBody } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        body: apiError('headers_too_large', 'the URL and headers are too large (16 KiB in all)'),
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        body: apiError('request_timeout', 'the request did not arrive in time'),
      };
    default:
      return { status: 400, body: apiError('bad_request', 'the request is not valid HTTP') };
  }
}

/** One problem of a request, named by its field (a query parameter, a body field). */
export interface FieldProblem {
  field: string;
  message: string;
}

/** The parts of a zod issue the details need (a `ZodError` issue, or one the validator carried). */
interface IssueLike {
  path: readonly PropertyKey[];
  code: string;
  message: string;
  keys?: readonly string[];
}

/**
 * `[{ field, message }]` for zod issues: the dotted path, or for unknown names the names
 * themselves, or `whole` when the problem is about the whole part (`(query)`, `(body)`).
 */
export function issueDetails(issues: readonly IssueLike[], whole: string): FieldProblem[] {
  return issues.map((i) => ({
    field:
      i.path.map(String).join('.') ||
      (i.code === 'unrecognized_keys' && i.keys ? i.keys.join(', ') : whole),
    message: i.message,
  }));
}

/** What fastify's validator attaches to its error (`err.validation`, `err.validationContext`). */
interface ValidationFailure {
  validation: readonly {
    keyword: string;
    instancePath: string;
    message?: string;
    params?: Record<string, unknown>;
  }[];
  validationContext?: string;
}

/** The default answer per request part; a route overrides it with `config.invalid`. */
const INVALID_BY_PART: Readonly<Record<string, { code: string; message: string; whole: string }>> =
  {
    querystring: { code: 'invalid_query', message: 'the query is invalid', whole: '(query)' },
    body: { code: 'invalid_body', message: 'the body is invalid', whole: WHOLE_BODY },
    params: { code: 'invalid_path', message: 'a path parameter is invalid', whole: '(path)' },
    headers: { code: 'invalid_headers', message: 'a header is invalid', whole: '(headers)' },
  };

/** Whether `err` is a request validation failure (the zod validator's, through fastify). */
export function isValidationFailure(err: unknown): err is ValidationFailure {
  return (
    typeof err === 'object' &&
    err !== null &&
    Array.isArray((err as Partial<ValidationFailure>).validation)
  );
}

/**
 * The product's answer to a request the route's schemas refused: 422 (or the route's status)
 * with `details: [{ field, message }]`, one per problem, the field named as the client wrote it.
 */
export function validationFailure(
  err: ValidationFailure,
  invalid?: { status?: number; code: string; message: string; parameterAlias?: boolean },
): { status: number; body: ApiErrorBody } {
  const part = INVALID_BY_PART[err.validationContext ?? 'body'] ?? INVALID_BY_PART.body!;
  const details = issueDetails(
    err.validation.map((v) => ({
      path: v.instancePath.split('/').filter((s) => s !== ''),
      code: v.keyword,
      message: v.message ?? 'is invalid',
      ...(Array.isArray(v.params?.keys) ? { keys: v.params.keys as string[] } : {}),
    })),
    part.whole,
  ).map((d) => (invalid?.parameterAlias ? { parameter: d.field, ...d } : d));
  return {
    status: invalid?.status ?? 422,
    body: apiError(invalid?.code ?? part.code, invalid?.message ?? part.message, details),
  };
}
