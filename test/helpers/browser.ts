import { existsSync } from 'node:fs';

import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium: playwright-core drives it, nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) process.stderr.write(`browser tests skipped: ${CHROMIUM} not found\n`);

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
