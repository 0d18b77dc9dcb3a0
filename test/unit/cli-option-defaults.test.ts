/**
 * Every default `--help` shows is a value its option accepts: a user who types what the help says
 * gets the default, not a refusal. `billing health --help` showed `--max-age … (default: 30000)`,
 * the milliseconds the option holds, and `--max-age 30000` was refused (it takes a duration).
 */
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.ts';
import { LISTING_CTX } from '../support/cli-run.ts';

/** Every command of `cmd`, itself included, with its path. */
function allCommands(cmd: Command, path: string[] = []): [string, Command][] {
  return [
    [path.join(' ') || 'billing', cmd],
    ...cmd.commands.flatMap((c) => allCommands(c, [...path, c.name()])),
  ];
}

describe('the defaults --help shows', () => {
  it('are accepted by their options as written', () => {
    const checked: string[] = [];
    for (const [path, cmd] of allCommands(buildProgram(LISTING_CTX))) {
      for (const opt of cmd.options as Option[]) {
        if (opt.defaultValue === undefined || !opt.parseArg || opt.isBoolean()) continue;
        const shown = opt.defaultValueDescription ?? JSON.stringify(opt.defaultValue);
        // What a user would type: the shown text without JSON's quotes.
        const typed = shown.replace(/^"(.*)"$/, '$1');
        expect(
          () => opt.parseArg?.(typed, undefined),
          `${path} ${opt.long ?? ''} ${typed}`,
        ).not.toThrow();
        checked.push(`${path} ${opt.long ?? ''}`);
      }
    }
    expect(checked).toContain('health --max-age');
  });
});
