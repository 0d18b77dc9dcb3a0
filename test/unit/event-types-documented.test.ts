/**
 * docs/notifications.md is what a merchant's receiver is written from: it names every event type
 * the product publishes (kernel/events.ts). A type added without its line there fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/kernel/events.ts';

const doc = readFileSync(new URL('../../docs/notifications.md', import.meta.url), 'utf8');

describe('docs/notifications.md', () => {
  it.each(EVENT_TYPES)('names the event type %s', (type) => {
    expect(doc).toContain(`\`${type}\``);
  });
});
