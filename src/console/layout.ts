/** The page shell of the console: head, navigation, the flash message, the content. */
import { html, type Html } from './html.ts';
import { CONSOLE_PATH } from './paths.ts';

export type Section = 'payments' | 'inbox' | 'batches' | 'subscriptions';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface PageContext {
  /** Who is looking (shown in the header). */
  who: string;
  /** The CSRF token for this operator's forms. */
  csrf: string;
  /** Whether the operator may act (forms are shown only then). */
  canWrite: boolean;
  flash?: Flash;
}

const NAV: [Section, string, string][] = [
  ['payments', 'Payments', `${CONSOLE_PATH}/payments`],
  ['inbox', 'Review inbox', `${CONSOLE_PATH}/inbox`],
  ['batches', 'Batches', `${CONSOLE_PATH}/batches`],
  ['subscriptions', 'Subscriptions', `${CONSOLE_PATH}/subscriptions`],
];

/** A whole page. */
export function page(ctx: PageContext, section: Section | undefined, title: string, body: Html) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · billing console</title>
        <link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css" />
        <script src="${CONSOLE_PATH}/assets/console.js" defer></script>
      </head>
      <body>
        <header>
          <span class="brand">sayswitch-billing · console</span>
          <nav>
            ${NAV.map(
              ([s, label, path]) =>
                html`<a href="${path}" class="${s === section ? 'on' : ''}">${label}</a>`,
            )}
          </nav>
          <span class="who">${ctx.who}${ctx.canWrite ? '' : ' (read-only)'}</span>
        </header>
        <main>
          ${
            ctx.flash
              ? html`<div
                  class="flash ${ctx.flash.kind}"
                  role="${ctx.flash.kind === 'error' ? 'alert' : 'status'}"
                >
                  ${ctx.flash.text}
                </div>`
              : ''
          }
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html>`;
}

/** The hidden CSRF field every action form carries. */
export const csrfField = (ctx: PageContext) =>
  html`<input type="hidden" name="_csrf" value="${ctx.csrf}" />`;
