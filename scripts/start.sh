#!/usr/bin/env bash
# `npm start`: the service from its JavaScript build (dist/), rebuilt when any source is
# newer. A small young generation keeps idle memory low (see bench/README.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ ! -f dist/.built ]] || [[ -n "$(find src tsconfig.json tsconfig.build.json -newer dist/.built -print -quit)" ]]; then
  bash scripts/node.sh node_modules/typescript/bin/tsc -p tsconfig.build.json
  touch dist/.built
fi
# shellcheck disable=SC2086  # HOUSEKEEPER_NODE_FLAGS: extra Node flags, space-separated (benchmarks).
exec bash scripts/node.sh --max-semi-space-size=2 ${HOUSEKEEPER_NODE_FLAGS:-} dist/src/main.js "$@"
