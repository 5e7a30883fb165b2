#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: unit tests of each package and
# end-to-end tests of the compiled binaries against real sshd workers on 127.0.0.1.
# The end-to-end tests create two worker users (p-w1, p-w2), so run this as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bun run typecheck
exec bun test "$@"
