/**
 * The console's one way to write HTML (src/console/html.ts): escaped by default, fragments
 * nested without double escaping, amounts in major units with their currency; and one of the
 * payment page's facts (the data-loss mark).
 */
import { describe, expect, it } from 'vitest';
import { badge, href, html, money } from '../../src/console/html.ts';
import { paymentFacts } from '../../src/console/payments-pages.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { toView } from '../../src/payments/view.ts';

describe('html``', () => {
  it('escapes every interpolated value, in text and in attributes', () => {
    const evil = `<script>alert("x")</script>' onmouseover='y`;
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y</p>',
    );
  });

  it('nests fragments as they are and escapes strings inside lists; nothing for null and booleans', () => {
    const items = ['<a>', html`<b>${'<c>'}</b>`];
    expect(
      html`<ul>
        ${items.map((i) => html`<li>${i}</li>`)}
      </ul>`.value.replace(/>\s+</g, '><'),
    ).toBe('<ul><li>&lt;a&gt;</li><li><b>&lt;c&gt;</b></li></ul>');
    expect(html`${null}${undefined}${false}${true}${0}`.value).toBe('0');
  });

  it('a state badge takes its class only from a plain word', () => {
    expect(badge('needs_review').value).toContain('state-needs_review');
    expect(badge('x" onclick="y').value).toContain('state-other');
    expect(badge('x" onclick="y').value).not.toContain('" onclick="');
  });

  it('links encode their query values', () => {
    expect(href('/console/payments', { q: 'a&b=c', state: undefined, cursor: '' })).toBe(
      '/console/payments?q=a%26b%3Dc',
    );
  });
});

describe('money', () => {
  it.each([
    [0, 'NGN', '0.00'],
    [5, 'NGN', '0.05'],
    [150050, 'NGN', '1,500.50'],
    [150000, 'USD', '1,500.00'],
    [123456789012, 'GHS', '1,234,567,890.12'],
  ])('%i minor units of %s read %s', (minor, currency, major) => {
    const out = money(minor, currency).value;
    expect(out).toContain(`${major}&nbsp;`);
    expect(out).toContain(`<abbr>${currency}</abbr>`);
  });
});

describe('the payment facts', () => {
  const intent = {
    key: 'api_lost1',
    type: 'charge',
    origin: 'api',
    state: 'succeeded',
    amount: 2500,
    currency: 'NGN',
    attempt: 1,
    reference: 'api_lost1_1',
    createdAt: Date.UTC(2026, 11, 2),
    updatedAt: Date.UTC(2026, 11, 2),
    checks: 0,
    enqueues: 1,
    unsentResubmits: 0,
  } as unknown as Intent;

  it('say when a payment was created after a Redis data loss, and nothing otherwise', () => {
    const marked = paymentFacts(
      toView({ ...intent, afterDataLoss: Date.UTC(2026, 11, 2, 9) }, []),
      undefined,
    ).value;
    expect(marked).toContain('Created after a data loss');
    expect(marked).toContain('2026-12-02T09:00:00.000Z');
    expect(paymentFacts(toView(intent, []), undefined).value).not.toContain('data loss');
  });
});
