import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

import { ROOT } from './cli.js';
import type { Requirement } from './requirements.js';

/** Debian's Chromium: playwright-core drives it, nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
/** What the browser tests need (test/helpers/requirements.ts). */
export const chromiumRequirement: Requirement = hasChromium
  ? { available: true }
  : { available: false, reason: `${CHROMIUM} not found (apt-get install chromium)` };

/** Where the browser tests write their screenshots (made by useChromium). */
export const SHOTS = join(ROOT, 'test-output');

/** Headless Chromium with the flags every browser test uses (no network of its own, no sandbox as root). */
export function launchChromium(executablePath = CHROMIUM): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * The suite's Chromium, launched (and SHOTS made) before its tests and closed after them; read it through the
 * returned function inside hooks and tests.
 */
export function useChromium(executablePath = CHROMIUM): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium(executablePath);
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (browser === undefined) throw new Error('the browser is open only in the suite’s hooks and tests');
    return browser;
  };
}
