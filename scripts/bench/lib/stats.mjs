// Small statistics helpers: every benchmark reports medians of several runs, never a single timing.
import { performance } from 'node:perf_hooks';

export function median(values) {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Wall time of one call of `fn`, in ms. */
export async function timeMs(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/** Rounds for display: 3 significant digits, no exponent. */
export function fmt(n, unit = '') {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })}${unit}`;
}
