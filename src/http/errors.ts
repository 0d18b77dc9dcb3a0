/** JSON errors `{ error: { code, message, details? } }` for every route. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function apiError(code: string, message: string, details?: unknown): ApiErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}

/**
 * Fastify's own errors (body parsing, routing) in the product's vocabulary: never an `FST_ERR_*`
 * code, never the request URL echoed back. Unknown framework errors are a plain `bad_request`.
 */
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
