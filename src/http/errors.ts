/** JSON errors `{ error: { code, message, details? } }` for every route. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function apiError(code: string, message: string, details?: unknown): ApiErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}
