#!/usr/bin/env bash
# See p work without a remote machine: starts a throwaway sshd on 127.0.0.1 for the current
# user, registers it as a worker in a scratch config, and runs a job on it from this repo.
# Your own ~/.config/p, ~/.ssh and known_hosts are not touched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

demo=$(mktemp -d "${TMPDIR:-/tmp}/p-demo.XXXXXX")
cleanup() {
  # the worker is this user: remove the demo's jobs from ~/.p as well
  for f in "$demo"/data/p/jobs/*.json; do
    [ -e "$f" ] || continue
    id=$(basename "$f" .json)
    rm -rf "$HOME/.p/jobs/$id" "$HOME/.p/workdirs/$id"
  done
  # (and the process that kept its connection between runs)
  pkill -f "[_]_keep-connections $demo/run/" || true
  bash test/fixtures/workers.sh down "$demo"
  rm -rf "$demo"
}
trap cleanup EXIT
bash test/fixtures/workers.sh up "$demo" >/dev/null

export XDG_CONFIG_HOME="$demo/config" XDG_DATA_HOME="$demo/data" XDG_CACHE_HOME="$demo/cache"
export XDG_RUNTIME_DIR="$demo/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
export P_SSH_COMMAND="ssh -F $demo/ssh_config"
p=$PWD/dist/p
me=$(id -un)

run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
run "$p" worker register "$me" -n local
run "$p" worker ls
run "$p" -- 'echo "hello from $(hostname) as $(whoami), in $PWD"; ls | head -5;
  git log --oneline -1 2>/dev/null || true'
run "$p" -d -- 'sleep 1; echo detached job done'
sleep 2
run "$p" ls -a
