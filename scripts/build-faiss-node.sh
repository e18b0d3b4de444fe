#!/usr/bin/env bash
# Builds the native part of faiss-node 0.5.1 against Debian's libfaiss-dev (FAISS 1.7.3),
# offline. faiss-node's own install script downloads a prebuilt binary or clones FAISS,
# both impossible here, so npm installs it with --ignore-scripts and this script builds
# node_modules/faiss-node/build/Release/faiss-node.node with cmake-js, using the
# node-api-headers package (nothing is downloaded). Idempotent: does nothing when the
# addon is already there and loads. Called by scripts/setup.sh.
#
# What it changes inside node_modules/faiss-node (npm ci restores the originals, and
# this script puts the changes back):
#   - deps/faiss/{CMakeLists.txt,faiss_idx_t_shim.h} copied from scripts/faiss-shim/:
#     import Debian's FAISS as the target `faiss`, and add faiss::idx_t for FAISS 1.7.3.
#   - CMakeLists.txt patched: its Debian-only post-build step, which copies libgomp,
#     libopenblas.so.0, libgfortran, libquadmath next to the addon and runs patchelf on
#     them, is disabled. It fails here (no libopenblas.so.0 without libopenblas, no
#     patchelf) and is not needed: the addon links the system libraries.
#   - src/faiss.cc patched with scripts/faiss-shim/float32.patch: add() and train() also
#     take a Float32Array, which FAISS reads in place. Stock 0.5.1 takes only number[] and
#     copies it element by element through N-API, which made a rebuild's add 3.5x slower
#     and its memory 1.5x larger (bench/results/faiss-rebuild.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
log() { echo "setup: $*"; }

node_bin="$(project_node_bin "$root")" || { echo "setup: Node ${NODE_MAJOR_WANTED} not found; run scripts/setup.sh" >&2; exit 1; }
export PATH="$(dirname "$node_bin"):$PATH"

pkg=node_modules/faiss-node
addon="$pkg/build/Release/faiss-node.node"
shim="$root/scripts/faiss-shim"

# Loads, and takes a Float32Array (an addon built before the patch is rebuilt).
faiss_loads() {
  "$node_bin" -e "const f = require('faiss-node'); const i = new f.IndexFlatL2(4); i.add(new Float32Array([1, 2, 3, 4])); if (i.getDimension() !== 4 || i.ntotal() !== 1) process.exit(1)" >/dev/null 2>&1
}

if [[ -f "$addon" ]] && faiss_loads; then
  log "faiss-node built"
  exit 0
fi

[[ -f "$pkg/package.json" ]] || { echo "setup: $pkg missing; run npm ci first" >&2; exit 1; }
for f in node_modules/cmake-js/bin/cmake-js node_modules/node-api-headers/package.json; do
  [[ -f "$f" ]] || { echo "setup: $f missing (cmake-js and node-api-headers are devDependencies); run npm ci" >&2; exit 1; }
done
for tool in cmake g++ make patch; do
  command -v "$tool" >/dev/null || { echo "setup: $tool not found; install Debian packages first" >&2; exit 1; }
done
[[ -f /usr/include/faiss/Index.h ]] || { echo "setup: FAISS headers missing; install libfaiss-dev" >&2; exit 1; }

log "building faiss-node against Debian's libfaiss (a few seconds)"

# Shim (1) and (2): deps/faiss from our own sources.
mkdir -p "$pkg/deps/faiss"
cp "$shim/CMakeLists.txt" "$shim/faiss_idx_t_shim.h" "$pkg/deps/faiss/"

# Disable the Debian post-build copy of libgomp/libopenblas/libgfortran/libquadmath.
marker='# housekeeper: post-build copy of system libraries disabled'
if ! grep -qF "$marker" "$pkg/CMakeLists.txt"; then
  grep -qF 'if(EXISTS "/etc/debian_version")' "$pkg/CMakeLists.txt" \
    || { echo "setup: $pkg/CMakeLists.txt does not look like faiss-node 0.5.1's; cannot patch" >&2; exit 1; }
  sed -i "s|if(EXISTS \"/etc/debian_version\")|if(FALSE AND EXISTS \"/etc/debian_version\") $marker|" "$pkg/CMakeLists.txt"
fi

# Float32Array in add() and train(); applied once (npm ci restores the original file).
if ! grep -qF 'napi_float32_array' "$pkg/src/faiss.cc"; then
  patch --quiet --forward -p1 -d "$pkg" < "$shim/float32.patch" \
    || { echo "setup: $shim/float32.patch does not apply to $pkg/src/faiss.cc (not faiss-node 0.5.1?)" >&2; exit 1; }
fi

logdir="$root/node_modules/.cache/housekeeper"
mkdir -p "$logdir"
build_log="$logdir/faiss-node-build.log"
: > "$build_log"

# Start clean: a build dir left by an earlier, failed or foreign build is not trusted.
rm -rf "$pkg/build"
jobs="$(nproc 2>/dev/null || echo 2)"
start=$SECONDS
if ! (cd "$pkg" && "$node_bin" "$root/node_modules/cmake-js/bin/cmake-js" build \
        --prefer-make --config Release --parallel "$jobs" --log-level info) >>"$build_log" 2>&1; then
  echo "setup: faiss-node build failed; last lines of $build_log:" >&2
  tail -n 40 "$build_log" >&2
  exit 1
fi

if [[ ! -f "$addon" ]]; then
  echo "setup: build finished but $addon is missing; see $build_log" >&2
  tail -n 40 "$build_log" >&2
  exit 1
fi
if ! faiss_loads; then
  echo "setup: $addon was built but does not load:" >&2
  "$node_bin" -e "require('faiss-node')" 2>&1 | tail -n 20 >&2 || true
  exit 1
fi
log "faiss-node built in $((SECONDS - start)) s (log: ${build_log#"$root"/})"
