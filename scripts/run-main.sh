#!/usr/bin/env bash
# Starts cairn's main program from the build folder given: the member binary
# `cairn` once it exists; until then the deterministic cluster simulator.
set -euo pipefail
build=${1:-build}
shift || true
if [ -x "$build/bin/cairn" ]; then
  exec "$build/bin/cairn" "$@"
elif [ -x "$build/bin/cairn-sim" ]; then
  exec "$build/bin/cairn-sim" "$@"
fi
echo "run-main: no main program has been built yet (see README's status table)" >&2
exit 1
