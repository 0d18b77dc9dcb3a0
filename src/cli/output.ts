/** Human output by default, `--json` for machines: one place that decides how a result is printed. */
export interface Output {
  json: boolean;
  /** Prints a result: as JSON when --json, else through `human`. */
  result(value: unknown, human?: (v: unknown) => string): void;
  info(line: string): void;
  error(line: string): void;
}

export function createOutput(
  json: boolean,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Output {
  return {
    json,
    result(value, human) {
      out.write(
        json || !human ? `${JSON.stringify(value, null, json ? 0 : 2)}\n` : `${human(value)}\n`,
      );
    },
    info(line) {
      if (!json) out.write(`${line}\n`);
    },
    error(line) {
      err.write(`${line}\n`);
    },
  };
}
