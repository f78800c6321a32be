#!/usr/bin/env bash
# Runs CTest in each build folder given as "DIR[:LABEL-REGEX]" and prints one
# closing "N passed, M failed" line over all of them. Exit status 0 only if
# every test passed and at least one ran.
set -uo pipefail

jobs=${CTEST_JOBS:-2}
passed=0
failed=0
failed_names=()
for spec in "$@"; do
  dir=${spec%%:*}
  labels=""
  if [ "$spec" != "$dir" ]; then
    labels=${spec#*:}
  fi
  log=$(mktemp)
  args=(--test-dir "$dir" -j"$jobs" --output-on-failure --no-tests=error)
  [ -n "$labels" ] && args+=(-L "$labels")
  echo "== ctest in $dir ${labels:+(labels $labels)}"
  ctest "${args[@]}" 2>&1 | tee "$log"
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
  bad=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$total" ]; then
    echo "run-tests: no summary from ctest in $dir" >&2
    failed=$((failed + 1))
    failed_names+=("$dir:(ctest did not run)")
  else
    passed=$((passed + total - bad))
    failed=$((failed + bad))
    while IFS= read -r name; do
      failed_names+=("$dir:$name")
    done < <(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' "$log")
  fi
  rm -f "$log"
done

if [ ${#failed_names[@]} -gt 0 ]; then
  echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
