#!/usr/bin/env bash
# Installs what p needs to build and test on a fresh machine (Node and npm only), then builds.
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[2m==> %s\033[0m\n' "$*" >&2; }

if ! command -v bun >/dev/null 2>&1; then
  say "installing bun (npm install -g bun)"
  npm install -g bun >/dev/null
fi

missing=()
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || missing+=(openssh-server)
# the tests (scripts/test.sh) check the worker-side scripts with these
if [ -n "${P_SETUP_TESTS:-}" ]; then
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  command -v dash >/dev/null 2>&1 || missing+=(dash)
  # a one-node Slurm for the Slurm worker's tests (test/fixtures/slurm.sh starts it)
  [ -x /usr/sbin/slurmctld ] || missing+=(slurmctld)
  [ -x /usr/sbin/slurmd ] || missing+=(slurmd)
  command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
  [ -x /usr/sbin/munged ] || missing+=(munge)
  # a real browser for the dashboard's tests (p ui), driven by puppeteer-core
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "p needs ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]}) and run this again" >&2
    exit 1
  fi
fi

say "bun install"
bun install --frozen-lockfile >/dev/null
say "bun run build"
bun run build >/dev/null 2>&1 || bun run build
