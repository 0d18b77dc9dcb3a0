/** Flag parsers shared by commands; each names its flag in the error (exit code 2). */
import { InvalidArgumentError } from 'commander';
import { ROLES, type Role } from '../app/composition.ts';

/** Parses `--roles api,worker`. */
export function parseRoles(value: string): Role[] {
  const roles = value
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (bad.length > 0 || roles.length === 0) {
    throw new InvalidArgumentError(
      `unknown role(s) ${bad.join(', ') || '(none)'}; use ${ROLES.join(', ')}`,
    );
  }
  return roles as Role[];
}

/** Parses a non-negative integer flag. */
export function parseIntFlag(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(value);
  };
}
