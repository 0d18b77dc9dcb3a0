/** Errors the CLI turns into exit codes: 2 for bad usage or input, 1 for runtime failures. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command whose capability is not built yet says so and exits 1: nothing pretends to work. */
export class NotBuiltError extends Error {
  constructor(what: string, issue: string) {
    super(`${what} is not built yet (tracked in ${issue}).`);
    this.name = 'NotBuiltError';
  }
}
