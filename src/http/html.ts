/** Escapes text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(
    /[&<>"']/g,
    c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

export function isoTime(ms: number | undefined): string {
  return ms
    ? new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '';
}

/**
 * The dashboard's icon: a "J" on the nav bar's colour. Linked from every page (as a data URI, no request) and
 * served at /favicon.ico for the pages that do not link one (bull-board's): each page's request for it was a
 * 404 in the browser's console, the only error there (adversary 14 F7).
 */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f2937"/>' +
  '<path d="M10 3v7a3 3 0 0 1-6 0" fill="none" stroke="#e5e7eb" stroke-width="2"/></svg>';

/** A page in the dashboard's own style, with links back to bull-board. */
export function page(title: string, body: string, base: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · JTM</title>
<link rel="icon" href="data:image/svg+xml,${encodeURIComponent(FAVICON_SVG)}">
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1f2937}
nav{background:#1f2937;padding:.6rem 1rem}nav a{color:#e5e7eb;margin-right:1.2rem;text-decoration:none}
main{padding:1rem 1.5rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:left;font-size:.9rem;vertical-align:top}
th{background:#f3f4f6}code{font-size:.85rem;white-space:pre-wrap;overflow-wrap:anywhere}.empty{color:#6b7280}.note{color:#6b7280;font-size:.85rem;max-width:900px}.error{color:#b91c1c}
.status-failed,.status-timeout,.status-lostconnection,.status-terminated,.status-outputerror{color:#b91c1c;font-weight:600}
.status-success{color:#047857;font-weight:600}.status-running{color:#1d4ed8;font-weight:600}
</style></head><body>
<nav><a href="${base}/queues">Queues</a><a href="${base}/workers">Workers</a><a href="${base}/task">Task lookup</a></nav>
<main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

/** A table from rows of cells that are already HTML. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  empty: string,
): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  const head = headers.map(h => `<th>${esc(h)}</th>`).join('');
  const body = rows.map(r => `<tr>${r.map(c => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
