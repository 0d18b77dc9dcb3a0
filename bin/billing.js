#!/usr/bin/env node
// Launcher for the `billing` CLI: runs the compiled dist/ (plain Node, no loader) when it is there
// and up to date, else the TypeScript sources through tsx.
// - NODE_ENV=production (the Docker image, which has no src/): dist/, which must exist.
// - Otherwise dist/ when dist/main.js is at least as new as every file under src/ (`npm run
//   build` made it and nothing changed since), so a stale build never runs; else tsx, so
//   `npx billing` and `npm run demo` work right after `npm ci` with no build step.
// BILLING_RUNTIME=tsx forces the sources, BILLING_RUNTIME=dist the build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = new URL('../dist/main.js', import.meta.url);

/** Newest modification time of any file under `dir`. */
function newest(dir) {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

function distUsable() {
  const forced = process.env.BILLING_RUNTIME;
  if (forced === 'tsx') return false;
  if (!existsSync(dist)) {
    if (forced === 'dist' || process.env.NODE_ENV === 'production') {
      const why = forced === 'dist' ? 'BILLING_RUNTIME=dist' : 'NODE_ENV=production';
      console.error(`dist/ is missing and ${why} requires it: run \`npm run build\``);
      process.exit(2);
    }
    return false;
  }
  if (forced === 'dist' || process.env.NODE_ENV === 'production') return true;
  const src = `${root}/src`;
  return !existsSync(src) || newest(src) <= statSync(dist).mtimeMs;
}

if (distUsable()) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
