/**
 * A headless browser for the console's browser tests: playwright-core driving the system's
 * Chromium (Debian's `chromium`, which .ci/run installs). Where none can be found the tests are
 * skipped with a visible warning naming what was looked for, never silently.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [
  process.env.CHROMIUM_PATH,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
].filter((p): p is string => p !== undefined && p !== '');

/** The browser executable, or undefined when none is installed. */
export const browserPath: string | undefined = CANDIDATES.find((p) => existsSync(p));

/** Why browser tests are skipped (undefined when they run). */
export const noBrowser: string | undefined =
  browserPath === undefined
    ? `console browser tests SKIPPED: no Chromium found (looked for ${CANDIDATES.join(', ')}); ` +
      'install it (apt-get install chromium) or set CHROMIUM_PATH'
    : undefined;
if (noBrowser) console.warn(noBrowser);

/** Launches the headless browser; close it in afterAll. */
export function launchBrowser(): Promise<Browser> {
  if (browserPath === undefined) throw new Error(noBrowser);
  return chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}
