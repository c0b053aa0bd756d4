#!/usr/bin/env bash
# The whole test suite: installs and builds what it needs, then runs every test against a private
# redis-server (or $REDIS_URL). Suites that need what this machine lacks (chromium, root or Slurm) are
# skipped, one line each saying why; in CI (CI=true, .ci/run) they run, and fail if they cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 && [ -z "${REDIS_URL:-}" ]; then
  echo "redis-server not found: install it (Debian: apt-get install -y redis-server) or set REDIS_URL" >&2
  exit 1
fi
# Exactly the lock file's tree: `npm ci` when node_modules is missing or older than the lock (ci fails when
# package.json and package-lock.json disagree, which is what we want to know).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
npm run --silent typecheck
# Lint too (ESLint, Prettier, no import cycles): CI fails on what a reviewer would reject.
npm run --silent lint
mkdir -p test-output
rm -f test-output/vitest.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-output/vitest.json "$@" || status=$?
# The skipped suites, one line each with the reason (their titles carry it: test/helpers/requirements.ts),
# then one plain closing line, whatever reads this output: "tests: N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-output/vitest.json", "utf8"));
  const root = process.cwd() + "/";
  const skips = new Set();
  for (const file of r.testResults) {
    for (const t of file.assertionResults) {
      // A skipped suite carries the reason in its title, a single skipped test in its own (then named too).
      const title = [...t.ancestorTitles, t.title].find(a => a.includes(" [skipped: "));
      if (!title) continue;
      const at = title.indexOf(" [skipped: ");
      const what = title === t.title ? `${title.slice(0, at)}: ` : "";
      skips.add(`skipped: ${file.name.replace(root, "")}: ${what}${title.slice(at + 11, -1)}`);
    }
  }
  for (const line of skips) console.log(line);
  // A file that fails outside any test (an import, a beforeAll) fails no test: say so, or "0 failed" would lie.
  const broken = r.testResults.filter(f => f.status === "failed" && !f.assertionResults.some(t => t.status === "failed"));
  const skipped = r.numPendingTests + r.numTodoTests;
  const files = broken.length > 0 ? `; ${broken.length} file(s) failed outside their tests: ${broken.map(f => f.name.replace(root, "")).join(", ")}` : "";
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped${files}`);
' || {
  echo "tests: no report (vitest did not run)"
  if [ "$status" -eq 0 ]; then status=1; fi
}
exit "$status"
