/**
 * Role liveness for container healthchecks (docs/operations.md, "Health of a role"): `billing
 * start --health-file <path>` rewrites a small JSON heartbeat every few seconds with what the
 * process itself sees — Redis answering a PING, its BullMQ workers running, the HTTP server
 * listening (role api) — and removes it on a clean stop. `billing health --health-file <path>`
 * reads it in the same container and exits 0 only when the heartbeat is fresh, its process alive
 * and everything it reports is up. Nothing listens on a port, and the check needs no secrets.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { z } from 'zod';

/** How often `billing start` rewrites the heartbeat. */
export const HEARTBEAT_EVERY_MS = 5_000;
/** The oldest heartbeat `billing health` accepts by default (six missed beats). */
export const DEFAULT_MAX_AGE_MS = 30_000;

export interface Heartbeat {
  pid: number;
  roles: string[];
  startedAt: string;
  /** When this beat was written (ISO 8601). */
  at: string;
  /** `up`, or why Redis is not usable: `redis_unavailable`, `redis_out_of_memory`, `redis_cannot_persist`, `redis_data_lost`. */
  redis: string;
  workers: { queue: string; running: boolean }[];
  /** Role api only: whether the HTTP server listens. */
  http?: { listening: boolean };
}

/** Writes a heartbeat atomically (a reader never sees half a file). */
export async function writeHeartbeat(path: string, beat: Heartbeat): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(beat)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

export async function removeHeartbeat(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** What `billing start` writes; extra fields (a newer writer's) are kept. */
const heartbeatSchema = z.looseObject({
  pid: z.number().int(),
  roles: z.array(z.string()),
  startedAt: z.string(),
  at: z.string(),
  redis: z.string(),
  workers: z.array(z.looseObject({ queue: z.string(), running: z.boolean() })),
  http: z.looseObject({ listening: z.boolean() }).optional(),
}) satisfies z.ZodType<Heartbeat>;

/** A file that is JSON (or not even that) but not a heartbeat `billing start` wrote. */
export class NotAHeartbeatError extends Error {
  constructor(
    readonly path: string,
    /** What is wrong, in words: `unreadable JSON`, `workers: …`. */
    readonly why: string,
  ) {
    super(`${path} is not a heartbeat file (${why})`);
    this.name = 'NotAHeartbeatError';
  }
}

/**
 * Reads and checks a heartbeat. Throws the file-system error when it cannot be read, and
 * {@link NotAHeartbeatError} when it is not JSON or not shaped like a heartbeat.
 */
export async function readHeartbeat(path: string): Promise<Heartbeat> {
  const text = await readFile(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new NotAHeartbeatError(path, 'unreadable JSON');
  }
  const parsed = heartbeatSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    throw new NotAHeartbeatError(path, `${where}${first?.message ?? 'unexpected shape'}`);
  }
  return parsed.data;
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What is wrong with a heartbeat, in words; empty when the role is healthy. */
export function heartbeatProblems(
  beat: Heartbeat,
  opts: { nowMs: number; maxAgeMs: number; alive: (pid: number) => boolean },
): string[] {
  const problems: string[] = [];
  const ageMs = opts.nowMs - Date.parse(beat.at);
  if (!Number.isFinite(ageMs)) problems.push('the heartbeat has no valid time');
  else if (ageMs > opts.maxAgeMs) {
    problems.push(
      `the last heartbeat is ${Math.round(ageMs / 1000)} s old (at most ${Math.round(opts.maxAgeMs / 1000)} s)`,
    );
  }
  if (!opts.alive(beat.pid)) problems.push(`process ${beat.pid} is not running`);
  if (beat.redis !== 'up') problems.push(`Redis: ${beat.redis}`);
  for (const w of beat.workers) {
    if (!w.running) problems.push(`the ${w.queue} worker is not running`);
  }
  if (beat.http && !beat.http.listening) problems.push('the HTTP server is not listening');
  return problems;
}
