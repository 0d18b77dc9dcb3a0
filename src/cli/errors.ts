/** Errors the CLI turns into exit codes: 2 for bad usage or input, 1 for runtime failures. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
