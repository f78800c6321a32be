#!/usr/bin/env bash
# Static checks on src/: formatting (clang-format --dry-run), clang-tidy with
# the build's compile_commands.json, and cppcheck. Exit status 1 on any finding.
set -uo pipefail
build=${1:-build}
status=0
mapfile -t files < <(find src -name '*.c' | sort)
mapfile -t all < <(find src tests bench -name '*.[ch]' 2>/dev/null | sort)

echo "== clang-format"
if ! clang-format --dry-run --Werror "${all[@]}"; then status=1; fi

echo "== clang-tidy"
if ! clang-tidy -p "$build" --quiet "${files[@]}" 2>/dev/null \
    | grep -E 'warning:|error:' ; then :; else status=1; fi

echo "== cppcheck"
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
     --inline-suppr --std=c11 -I src \
     --suppress=missingIncludeSystem "${files[@]}"; then status=1; fi

[ $status -eq 0 ] && echo "lint: clean"
exit $status
