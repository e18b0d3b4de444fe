#!/usr/bin/env bash
# Runs the project's Node (24, from scripts/setup.sh) with the given arguments.
# The system Node on Debian 12 images is 20, past end of life; we never fall back to it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
node_bin="$(project_node_bin "$root")" || { echo "housekeeper: Node 24 not installed; run 'npm run setup' first" >&2; exit 1; }
export PATH="$(dirname "$node_bin"):$PATH"
exec "$node_bin" "$@"
