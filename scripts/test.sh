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
npx vitest run "$@"
