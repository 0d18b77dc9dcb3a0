#!/usr/bin/env node
// Launcher for the `billing` CLI. In production images (NODE_ENV=production) the compiled
// dist/ is used; everywhere else the TypeScript sources run through tsx, so `npx billing`
// works right after `npm ci` with no build step and never runs a stale build.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/main.js', import.meta.url);
if (process.env.NODE_ENV === 'production' && existsSync(dist)) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
