/**
 * Which new batches wait for a second person's approval (BATCH_APPROVAL, docs/batches.md
 * "Approval"), and who a submitter or approver is: the one place that decides both.
 */
import { userInfo } from 'node:os';
import type { InstructionType } from '../kernel/intent.ts';

export const BATCH_APPROVAL_MODES = ['none', 'payouts', 'all'] as const;
export type BatchApproval = (typeof BATCH_APPROVAL_MODES)[number];

/** Whether a new batch of `type` waits for approval under `mode`. */
export function needsApproval(mode: BatchApproval, type: InstructionType): boolean {
  return mode === 'all' || (mode === 'payouts' && type === 'payout');
}

/**
 * The submitter of a submission that names none: the HTTP upload (`POST /batches`), which only
 * `API_TOKEN` may make (http/auth.ts). Callers that know better pass their identity.
 */
export const HTTP_SUBMITTER = 'API_TOKEN';

/** The identity of a CLI user: `cli:<os user>`. */
export function cliIdentity(): string {
  let name = 'unknown';
  try {
    name = userInfo().username || name;
  } catch {
    // No passwd entry (some containers): every such user is the same identity.
  }
  return `cli:${name}`;
}
