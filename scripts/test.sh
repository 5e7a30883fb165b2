#!/usr/bin/env bash
# Installs what the tests need, checks types, formatting and lint, and runs the whole suite:
# unit tests of each package, in-process tests of the CLI, and end-to-end tests of the
# compiled binaries against real sshd workers on 127.0.0.1.
# The end-to-end tests create two worker users (p-w1, p-w2), so run this as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
P_SETUP_TESTS=1 bash scripts/setup.sh
bun run typecheck
bun run lint
exec bun test "$@"
