/**
 * Batches (`/console/batches`): the most recent batches, and one batch's progress (rows and money
 * by state, refreshed while it runs), its failed rows with their reasons, the rows refused at
 * upload, the results file, and the operations of `POST /batches/:id/{cancel,retry-failed,approve}`
 * (batches/operations.ts) as forms. Approval by the submitter's own identity stays refused by the
 * service.
 */
import { withoutCardNumbers } from '../kernel/card-number.ts';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { batchIdSchema } from '../batches/ingest.ts';
import { approveBatch, cancelBatch, retryFailedBatch } from '../batches/operations.ts';
import { batchResultsStream } from '../batches/results.ts';
import { listBatches } from '../batches/list.ts';
import { batchStatus, type BatchStatus } from '../batches/status.ts';
import { listPayments } from '../payments/list.ts';
import { badge, href, html, money, seg, when, type Html } from './html.ts';
import { HIDDEN, type ConsoleKit } from './kit.ts';
import { csrfField, page, type PageContext } from './layout.ts';
import { CONSOLE_PATH } from './paths.ts';
import { PAGE_SIZE, paymentTable, unreadableNote } from './payments-pages.ts';

const RECENT = 50;

/** Rows still moving: not yet sent, being sent, or awaiting the gateway or the customer. */
const inFlight = (b: BatchStatus) => b.counts.pending + b.counts.requires_action;

/** The progress bar, as SVG (attributes, not inline styles: the console's CSP has no 'unsafe-inline'). */
function bar(b: BatchStatus): Html {
  const total = Math.max(1, b.valid);
  const w = (n: number) => Math.round((1000 * n) / total);
  const ok = w(b.counts.succeeded);
  const bad = w(b.counts.failed);
  const wait = w(b.counts.needs_review + b.counts.reversed);
  return html`<svg
    class="progress"
    viewBox="0 0 1000 10"
    preserveAspectRatio="none"
    aria-hidden="true"
  >
    <rect class="ok" x="0" y="0" width="${ok}" height="10" />
    <rect class="bad" x="${ok}" y="0" width="${bad}" height="10" />
    <rect class="wait" x="${ok + bad}" y="0" width="${wait}" height="10" />
  </svg>`;
}

function progress(b: BatchStatus): Html {
  const live = b.state !== 'completed';
  const card = (cls: string, n: number, label: string) =>
    html`<div class="card ${cls}">
      <div class="n" data-count="${cls}">${n}</div>
      <div class="l">${label}</div>
    </div>`;
  const states = [
    'succeeded',
    'failed',
    'pending',
    'requires_action',
    'needs_review',
    'reversed',
  ] as const;
  return html`<section id="progress" data-refresh="${live ? 'live' : 'done'}">
    <p>
      ${badge(b.state)} ${b.type} batch from <code>${b.source}</code> · ${b.valid} rows
      ${b.invalid > 0 ? html`(${b.invalid} refused at upload)` : ''} · created ${when(b.createdAt)}
      ${b.finishedAt ? html`· finished ${when(b.finishedAt)}` : ''}
    </p>
    ${bar(b)}
    <div class="cards">
      ${card('queued', b.counts.in_progress, 'queued, being sent, or outcome unknown')}
      ${card('in-flight', inFlight(b), 'in flight (pending, 3-D Secure)')}
      ${card('succeeded', b.counts.succeeded, 'succeeded')}
      ${card('failed', b.counts.failed, 'failed')}
      ${card('needs_review', b.counts.needs_review, 'needs review')}
      ${card('reversed', b.counts.reversed, 'reversed')}
    </div>
    <table class="amounts">
      <thead>
        <tr>
          <th>Currency</th>
          <th class="num">Rows</th>
          <th class="num">Total</th>
          ${states.map((s) => html`<th class="num">${s.replace('_', ' ')}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${Object.entries(b.totals).map(
          ([cur, t]) =>
            html`<tr>
              <td>${cur}</td>
              <td class="num">${t.rows}</td>
              <td class="num">${money(t.amountMinor, cur)}</td>
              ${states.map((s) => html`<td class="num">${money(t.byState[s].amountMinor, cur)}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>
    ${live ? html`<p class="muted">Running: <a href="">refresh</a> (the page refreshes itself with JavaScript).</p>` : ''}
  </section>`;
}

function facts(b: BatchStatus): Html {
  return html`<dl class="facts">
    <dt>Submitted by</dt>
    <dd>${b.submittedBy ?? '—'}</dd>
    ${
      b.approvedBy
        ? html`<dt>Approved by</dt>
            <dd>${b.approvedBy} at ${when(b.approvedAt)}</dd>`
        : ''
    }
    ${
      b.canceledAt
        ? html`<dt>Canceled by</dt>
            <dd>${b.canceledBy ?? '—'} at ${when(b.canceledAt)} (${b.canceledRows ?? 0} rows)</dd>`
        : ''
    }
    ${
      b.retryOf
        ? html`<dt>Retries the failed rows of</dt>
            <dd><a href="${CONSOLE_PATH}/batches/${seg(b.retryOf)}">${b.retryOf}</a></dd>`
        : ''
    }
    ${
      b.retriedBy
        ? html`<dt>Failed rows retried in</dt>
            <dd><a href="${CONSOLE_PATH}/batches/${seg(b.retriedBy)}">${b.retriedBy}</a></dd>`
        : ''
    }
  </dl>`;
}

function actions(ctx: PageContext, b: BatchStatus): Html {
  const base = `${CONSOLE_PATH}/batches/${seg(b.id)}`;
  const form = (what: string, label: string, cls = '', note = '') =>
    html`<form class="action" method="post" action="${base}/${what}">
      ${csrfField(ctx)}<button type="submit" class="${cls}">${label}</button
      >${note ? html`<span class="muted">${note}</span>` : ''}
    </form>`;
  // Refreshed with the progress: a batch that completes while its page is open loses its Cancel
  // button and gains Retry where it applies.
  return html`<div
    class="actions"
    id="actions"
    data-refresh="${b.state === 'completed' ? 'done' : 'live'}"
  >
    <a class="button secondary" href="${base}/results.csv" download>Download results (CSV)</a>
    ${ctx.canWrite && b.state === 'awaiting_approval' ? form('approve', 'Approve', '', 'by someone other than the submitter') : ''}
    ${ctx.canWrite && b.state !== 'completed' && !b.canceledAt ? form('cancel', 'Cancel unsent rows', 'danger') : ''}
    ${
      ctx.canWrite && b.state === 'completed' && b.counts.failed > 0 && !b.retriedBy
        ? form('retry-failed', 'Retry failed rows', '', 'as a new batch with new references')
        : ''
    }
  </div>`;
}

/** Registers the batch pages and actions. */
export function registerBatchPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const deps = kit.deps.batch;
  /** An action on an id that is no batch id (as the API answers 404 for it). */
  const noBatch = (reply: FastifyReply, id: string) =>
    kit.done(reply, `${CONSOLE_PATH}/batches`, { kind: 'error', text: `No batch ${id}.` });

  // Query values are unknown: a repeated parameter arrives as an array.
  scope.get<{ Querystring: { id?: unknown; cursor?: unknown } }>(
    '/batches',
    HIDDEN,
    async (req, reply) => {
      const ctx = kit.ctx(req, reply);
      const wanted = typeof req.query.id === 'string' ? req.query.id.trim() : undefined;
      let note: Html | string = '';
      if (wanted) {
        const id = batchIdSchema.safeParse(wanted);
        if (id.success && (await batchStatus(deps, id.data)))
          return reply.redirect(`${CONSOLE_PATH}/batches/${seg(id.data)}`, 303);
        note = html`<div class="flash error" role="alert">
          No batch <q>${withoutCardNumbers(wanted)}</q>.
        </div>`;
      }
      // The operator API's list (GET /batches): newest first, a page at a time.
      let list: Awaited<ReturnType<typeof listBatches>> = { data: [], next_cursor: null };
      try {
        const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : '';
        list = await listBatches(deps, { limit: RECENT, cursor: cursor || undefined });
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        note = html`<div class="flash error" role="alert">That page link is no longer valid.</div>`;
      }
      const batches = list.data;
      const body = html`<form class="filters" method="get" action="${CONSOLE_PATH}/batches">
          <label>Batch id <input name="id" value="${wanted ?? ''}" size="30" /></label
          ><button type="submit">Open</button>
        </form>
        ${note}
        ${
          batches.length === 0
            ? html`<p class="muted">No batches.</p>`
            : html`<table class="batches">
                <thead>
                  <tr>
                    <th>Created</th>
                    <th>Batch</th>
                    <th>Type</th>
                    <th>State</th>
                    <th class="num">Rows</th>
                    <th class="num">In progress</th>
                    <th class="num">Succeeded</th>
                    <th class="num">Failed</th>
                    <th class="num">Needs review</th>
                    <th>Source</th>
                  </tr>
                </thead>
                <tbody>
                  ${batches.map(
                    (b) =>
                      html`<tr>
                        <td>${when(b.createdAt)}</td>
                        <td><a href="${CONSOLE_PATH}/batches/${seg(b.id)}">${b.id}</a></td>
                        <td>${b.type}</td>
                        <td>${badge(b.state)}</td>
                        <td class="num">${b.valid}</td>
                        <td class="num">${b.counts.in_progress + inFlight(b)}</td>
                        <td class="num">${b.counts.succeeded}</td>
                        <td class="num">${b.counts.failed}</td>
                        <td class="num">${b.counts.needs_review}</td>
                        <td>${b.source}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
        <p class="pager">
          ${req.query.cursor ? html`<a href="${CONSOLE_PATH}/batches">← Newest</a>` : ''}
          ${
            list.next_cursor
              ? html`<a href="${href(`${CONSOLE_PATH}/batches`, { cursor: list.next_cursor })}"
                  >Older batches →</a
                >`
              : ''
          }
        </p>`;
      return kit.send(reply, page(ctx, 'batches', 'Batches', body));
    },
  );

  scope.get<{ Params: { id: string }; Querystring: { cursor?: string } }>(
    '/batches/:id',
    HIDDEN,
    async (req, reply) => {
      const ctx = kit.ctx(req, reply);
      const id = batchIdSchema.safeParse(req.params.id);
      const b = id.success ? await batchStatus(deps, id.data) : undefined;
      if (!id.success || !b) {
        return kit.send(
          reply,
          page(
            ctx,
            'batches',
            'Batch not found',
            html`<p>No batch <q>${withoutCardNumbers(req.params.id)}</q>.</p>`,
          ),
          404,
        );
      }
      const cursor = req.query.cursor;
      let failedRows: Html;
      try {
        const failed = await listPayments(
          deps.store,
          { batch: b.id, state: 'failed', limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) },
          req.log,
        );
        failedRows = html`${unreadableNote(failed.unreadable)} ${paymentTable(failed.data)}
        ${
          failed.next_cursor
            ? html`<p class="pager">
                <a
                  href="${href(`${CONSOLE_PATH}/batches/${seg(b.id)}`, { cursor: failed.next_cursor })}"
                  >More failed rows →</a
                >
              </p>`
            : ''
        }`;
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        failedRows = html`<p class="flash error">${err.message}</p>`;
      }
      const invalid = b.invalid > 0 ? await deps.batches.invalidRows(b.id, 0, PAGE_SIZE) : [];
      const body = html`${progress(b)} ${actions(ctx, b)} ${facts(b)}
        <section id="failed-rows" data-refresh="${b.state === 'completed' ? 'done' : 'live'}">
          <h2>Failed rows (${b.counts.failed})</h2>
          ${failedRows}
        </section>
        ${
          invalid.length > 0
            ? html`<h2>Rows refused at upload (${b.invalid})</h2>
                <table>
                  <thead>
                    <tr>
                      <th class="num">Line</th>
                      <th>Reference</th>
                      <th>Why</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${invalid.map(
                      (r) =>
                        html`<tr>
                          <td class="num">${r.line}</td>
                          <td>${r.reference ?? ''}</td>
                          <td>${r.message}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
                ${b.invalid > invalid.length ? html`<p class="muted">The results file lists all of them.</p>` : ''}`
            : ''
        }`;
      return kit.send(reply, page(ctx, 'batches', `Batch ${b.id}`, body));
    },
  );

  scope.get<{ Params: { id: string } }>('/batches/:id/results.csv', HIDDEN, async (req, reply) => {
    const id = batchIdSchema.safeParse(req.params.id);
    if (!id.success || !(await batchStatus(deps, id.data))) {
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .send(`no batch ${withoutCardNumbers(req.params.id)}`);
    }
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="batch-${id.data}-results.csv"`)
      .send(batchResultsStream(deps, id.data));
  });

  scope.post<{ Params: { id: string } }>('/batches/:id/cancel', HIDDEN, async (req, reply) => {
    const id = req.params.id;
    if (!batchIdSchema.safeParse(id).success) return noBatch(reply, id);
    const back = `${CONSOLE_PATH}/batches/${seg(id)}`;
    const r = await cancelBatch(deps, id, kit.who(req));
    switch (r.status) {
      case 'not_found':
        return kit.done(reply, `${CONSOLE_PATH}/batches`, {
          kind: 'error',
          text: `No batch ${id}.`,
        });
      case 'ingesting':
        return kit.done(reply, back, {
          kind: 'error',
          text: `Batch ${id} is still being enqueued; cancel it once its rows are enqueued.`,
        });
      case 'completed':
        return kit.done(reply, back, {
          kind: 'error',
          text: `Batch ${id} has completed: every row is final, nothing was canceled.`,
        });
      case 'canceled':
        return kit.done(reply, back, {
          kind: 'ok',
          text: `Batch ${id} canceled: ${r.canceledNow} unsent rows failed as canceled.`,
        });
    }
  });

  scope.post<{ Params: { id: string } }>('/batches/:id/approve', HIDDEN, async (req, reply) => {
    const id = req.params.id;
    if (!batchIdSchema.safeParse(id).success) return noBatch(reply, id);
    const back = `${CONSOLE_PATH}/batches/${seg(id)}`;
    const r = await approveBatch(deps, id, kit.who(req));
    if ('status' in r) {
      const text =
        r.status === 'approved'
          ? `Batch ${id} approved by ${kit.who(req)}: its rows are enqueued.`
          : `Batch ${id}: ${r.status.replace('_', ' ')}.`;
      return kit.done(reply, back, { kind: 'ok', text });
    }
    const text = {
      missing: `No batch ${id}.`,
      same_approver: `Batch ${id} was submitted by ${kit.who(req)}; another identity must approve it.`,
      canceled: `Batch ${id} is canceled.`,
      not_awaiting_approval: `Batch ${id} is ${r.state ?? 'not awaiting approval'}; nothing to approve.`,
    }[r.why];
    return kit.done(reply, back, { kind: 'error', text });
  });

  scope.post<{ Params: { id: string } }>(
    '/batches/:id/retry-failed',
    HIDDEN,
    async (req, reply) => {
      const id = req.params.id;
      if (!batchIdSchema.safeParse(id).success) return noBatch(reply, id);
      const back = `${CONSOLE_PATH}/batches/${seg(id)}`;
      const approval = deps.config?.batchApproval;
      const r = await retryFailedBatch(
        deps,
        id,
        kit.who(req),
        approval !== undefined ? { approval } : {},
      );
      switch (r.status) {
        case 'not_found':
          return kit.done(reply, `${CONSOLE_PATH}/batches`, {
            kind: 'error',
            text: `No batch ${id}.`,
          });
        case 'in_progress':
          return kit.done(reply, back, {
            kind: 'error',
            text: `Batch ${id} has ${r.inProgress} rows not final yet; retry its failed rows once every row is final.`,
          });
        case 'conflict':
          return kit.done(reply, back, {
            kind: 'error',
            text: `Batch id ${r.batchId} is already used by another batch.`,
          });
        case 'nothing_to_retry':
          return kit.done(reply, back, {
            kind: 'ok',
            text: `Batch ${id} has no failed rows to retry.`,
          });
        case 'created':
        case 'existing':
        case 'resumed':
          return kit.done(reply, `${CONSOLE_PATH}/batches/${seg(r.batch.id)}`, {
            kind: 'ok',
            text: `Failed rows of ${id} retried as batch ${r.batch.id} (${r.rows} rows, ${r.status}).`,
          });
      }
    },
  );
}
