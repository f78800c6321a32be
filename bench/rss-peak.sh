#!/bin/sh
# rss-peak.sh: where a cairn member's peak RSS goes under compare-etcd's
# workloads. Starts a three-member cairn cluster on 127.0.0.1, runs the
# cairn half of bench/compare-etcd.sh's workloads ROUNDS times in order
# (the same cairn-bench arguments), samples every member with
# bench/rss-peak.py, and prints each workload's RESULT line, the members'
# CPU ticks, the peak VmRSS of each member per workload and an smaps
# breakdown of each member at its peak (LMDB map, [heap], other anonymous
# mappings, libraries). Every process it starts is stopped by pid when it
# ends, however it ends.
#
# Environment: ROUNDS (3), WORKLOADS (all of compare-etcd's), CAIRN
# (build/bin/cairn), BENCH (build/bin/cairn-bench), PORT_BASE (23300:
# clients PORT_BASE..+2, peers +3..+5), KEEP=1 keeps the data folder.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-put-1 put-100 range-l range-s txn-put watch lease-keepalive}
CAIRN=${CAIRN:-$here/build/bin/cairn}
BENCH=${BENCH:-$here/build/bin/cairn-bench}
p=${PORT_BASE:-23300}

# shellcheck source=bench/workloads.sh
. "$here/bench/workloads.sh"

dir=$(mktemp -d /tmp/cairn-rss-XXXXXX)
pids="" spid=""
cleanup() {
    if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; fi
    for q in $pids; do kill "$q" 2>/dev/null || true; done
    for q in $pids $spid; do wait "$q" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "data kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster="" eps=""
for i in 0 1 2; do
    cluster="$cluster${cluster:+,}m$i=http://127.0.0.1:$((p + 3 + i))"
    eps="$eps${eps:+,}http://127.0.0.1:$((p + i))"
done
for i in 0 1 2; do
    c=http://127.0.0.1:$((p + i)) pe=http://127.0.0.1:$((p + 3 + i))
    "$CAIRN" --name "m$i" --data-dir "$dir/m$i" \
        --listen-client-urls "$c" --advertise-client-urls "$c" \
        --listen-peer-urls "$pe" --initial-advertise-peer-urls "$pe" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        >"$dir/log$i" 2>&1 &
    pids="$pids $!"
done
n=0
until "$BENCH" --endpoints "$eps" --timeout-ms 1000 put --total 1 2>/dev/null |
    grep -q 'errors=0$'; do
    n=$((n + 1))
    [ $n -lt 40 ] || { echo "rss-peak: no leader" >&2; exit 1; }
    sleep 0.5
done

ticks() { for q in $pids; do awk '{print $14 + $15}' "/proc/$q/stat"; done | awk '{s += $1} END {print s}'; }
# shellcheck disable=SC2086
python3 "$here/bench/rss-peak.py" "$dir/peak" "$dir/phase" $pids &
spid=$!
t0=$(ticks)
r=1
while [ $r -le "$ROUNDS" ]; do
    for w in $WORKLOADS; do
        echo "$r $w" >"$dir/phase"
        # shellcheck disable=SC2046
        echo "$r $w $("$BENCH" --endpoints "$eps" $(args_for "$w") 2>/dev/null | tail -1)"
    done
    r=$((r + 1))
done
echo "members' CPU ticks: $(($(ticks) - t0))"
kill "$spid"
wait "$spid" || true
spid=""
cat "$dir/peak"
