#!/usr/bin/env bash
# The whole test suite: installs and builds what it needs, then runs every test against a private
# redis-server (or $REDIS_URL). Tests that need root or Slurm say so when they cannot run here.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 && [ -z "${REDIS_URL:-}" ]; then
  echo "redis-server not found: install it (Debian: apt-get install -y redis-server) or set REDIS_URL" >&2
  exit 1
fi
# `npm install` (it follows package-lock.json) rather than `npm ci`: ci refuses the lock file because an
# optional Windows-only dependency of vite is absent from the registry, which install tolerates.
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm install --no-audit --no-fund
npm run --silent build
npm run --silent typecheck
mkdir -p test-output
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-output/vitest.json "$@" || status=$?
# One plain closing line, whatever reads this output: "tests: N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-output/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit "$status"
