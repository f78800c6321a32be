#!/usr/bin/env bash
# Runs etcd 3.4's own end-to-end test suite (from Debian's
# golang-etcd-server-dev) against cairn, or against Debian's real etcd with
# --against-etcd to compute the baseline. Prints one line per test and a
# closing "N passed, M failed" line.
#
#   tests/compat/etcd-e2e.sh [--against-etcd] [--run REGEX] [--build DIR]
#                            [--timeout SECONDS] [--list]
#
# The suite's binary is built with Debian's Go in GOPATH mode, offline, into
# BUILD/compat/. Each test runs as its own process group with a timeout, and
# the whole group is killed by its id afterwards, so no etcd or cairn process
# the suite started outlives its test. etcd's harness picks fixed ports
# (20000 and up), so two runs of this script must not overlap.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build="$top/build"
against=cairn
run_re='.*'
per_test_timeout=180
list_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --against-etcd) against=etcd ;;
    --run) run_re=$2; shift ;;
    --build) build=$2; shift ;;
    --timeout) per_test_timeout=$2; shift ;;
    --list) list_only=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "etcd-e2e: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

src=/usr/share/gocode/src/go.etcd.io/etcd
if [ ! -d "$src/tests/e2e" ] || ! command -v go >/dev/null; then
  echo "etcd-e2e: needs Debian's golang-etcd-server-dev and golang-go (scripts/deps.sh compat)" >&2
  exit 2
fi

out="$build/compat"
mkdir -p "$out"
bin="$out/e2e.test"
if [ ! -x "$bin" ] || [ -n "$(find "$src/tests/e2e" -newer "$bin" -name '*.go' | head -1)" ]; then
  echo "etcd-e2e: building etcd's e2e suite"
  if ! (cd "$src/tests/e2e" && GOPATH=/usr/share/gocode GO111MODULE=off \
        GOCACHE="$out/gocache" GOFLAGS= go test -c -o "$bin" .) >"$out/build.log" 2>&1; then
    cat "$out/build.log" >&2
    echo "etcd-e2e: could not build the suite" >&2
    exit 2
  fi
fi

bindir="$out/bin-$against"
mkdir -p "$bindir"
if [ "$against" = etcd ]; then
  ln -sf "$(command -v etcd)" "$bindir/etcd"
else
  if [ ! -x "$build/bin/cairn" ]; then
    echo "etcd-e2e: $build/bin/cairn is not built" >&2
    exit 2
  fi
  ln -sf "$build/bin/cairn" "$bindir/etcd"
fi
ln -sf "$(command -v etcdctl)" "$bindir/etcdctl"

mapfile -t tests < <("$bin" -test.list "$run_re" | grep '^Test')
if [ $list_only -eq 1 ]; then
  printf '%s\n' "${tests[@]}"
  exit 0
fi

passed=0
failed=0
results="$out/e2e-$against.txt"
: >"$results"
for t in "${tests[@]}"; do
  log="$out/logs-$against/$t.log"
  mkdir -p "$(dirname "$log")"
  start_ns=$(date +%s%N)
  # A new session makes the test the leader of its own process group.
  setsid "$bin" -test.run "^${t}\$" -test.v -test.timeout "${per_test_timeout}s" \
      -bin-dir "$bindir" -cert-dir "$src/integration/fixtures" >"$log" 2>&1 &
  pid=$!
  # The watchdog's sleep is killed with it and holds none of our output:
  # an orphaned sleep on CTest's pipe kept CTest waiting for its end.
  (
    sleep $((per_test_timeout + 15)) &
    s=$!
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    wait "$s"
    kill -KILL -- -"$pid" 2>/dev/null
  ) >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  kill -KILL -- -"$pid" 2>/dev/null # anything the test left behind
  ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
  if [ $rc -eq 0 ] && grep -q "^--- PASS: $t " "$log"; then
    verdict=PASS
    passed=$((passed + 1))
  else
    verdict=FAIL
    failed=$((failed + 1))
  fi
  printf '%s %s (%d.%01ds)\n' "$verdict" "$t" $((ms / 1000)) $((ms % 1000 / 100)) | tee -a "$results"
done
echo "e2e against $against: $passed passed, $failed failed" | tee -a "$results"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
