#!/usr/bin/env node
// Launcher for `npm run bench`: runs the TypeScript benches through tsx, like bin/billing.js.
const { register } = await import('tsx/esm/api');
register();
await import(new URL('../bench/index.ts', import.meta.url).href);
