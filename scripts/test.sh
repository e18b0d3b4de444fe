#!/usr/bin/env bash
# The whole suite: type check, then every test file under test/ with Node's test runner.
# Servers (Postgres, PgBouncer, Redis, ...) are started by test/harness on free loopback
# ports and stopped by the tests themselves.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
echo "== typecheck"
bash scripts/node.sh node_modules/typescript/bin/tsc --noEmit -p .
echo "== tests"
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then mapfile -t files < <(find test -name '*.test.ts' | sort); fi
exec bash scripts/node.sh --test --test-concurrency="${TEST_CONCURRENCY:-3}" \
  --test-timeout=300000 --test-reporter=spec "${files[@]}"
