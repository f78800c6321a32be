#!/bin/sh
# compare-etcd.sh: cairn against etcd 3.4 on this machine, side by side.
# Starts a three-member cairn cluster and a three-member etcd cluster
# (Debian's etcd-server, default flags but ports and data dirs) on
# 127.0.0.1, runs the same cairn-bench workloads against each, alternating
# A B A B over ROUNDS rounds, and prints per workload the median figures of
# each, the ratio cairn/etcd, the CPU seconds all server processes used
# (from /proc/PID/stat) and the peak RSS (VmHWM) of each server process.
# Every process it starts is stopped by pid when it ends, however it ends.
#
# Environment: ROUNDS (3), BENCH (build/bin/cairn-bench), CAIRN
# (build/bin/cairn), ETCD (etcd), PORT_BASE (picked from the pid), SCALE
# (1: multiplies request counts), WORKLOADS (space-separated subset of the
# names below), KEEP=1 keeps the data folder.
#
# TLS=1 adds a TLS cairn cluster and a TLS etcd cluster (https client and
# peer URLs, client and peer certificate authentication, one set of
# certificates made here with openssl for both) beside the plaintext ones,
# runs every workload on all four in turn, and prints cairn's TLS figures
# as ratios to its plaintext ones and to etcd's TLS ones (WORKLOADS then
# defaults to the put workloads).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
BENCH=${BENCH:-$here/build/bin/cairn-bench}
CAIRN=${CAIRN:-$here/build/bin/cairn}
ETCD=${ETCD:-etcd}
SCALE=${SCALE:-1}
# 40 ports a run (four clusters of three members, 10 apart), all below the
# kernel's ephemeral range (32768 up), where a client connection's local
# port could hold one of them (etcd failed "bind: address already in use").
PORT_BASE=${PORT_BASE:-$((20000 + ($$ % 300) * 40))}
TLS=${TLS:-0}
if [ "$TLS" = 1 ]; then
    WORKLOADS=${WORKLOADS:-put-1 put-100}
else
    WORKLOADS=${WORKLOADS:-put-1 put-100 range-l range-s txn-put watch lease-keepalive}
fi
TCK=$(getconf CLK_TCK)

[ -x "$BENCH" ] || { echo "compare-etcd: $BENCH is not built" >&2; exit 2; }
command -v "$ETCD" >/dev/null || { echo "compare-etcd: no $ETCD" >&2; exit 2; }

dir=$(mktemp -d /tmp/cairn-compare-XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "data kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_certs: a CA and one certificate (server and client use, for
# 127.0.0.1) that every member and the benchmark client use, in $dir/tls.
make_certs() {
    t=$dir/tls
    mkdir -p "$t"
    ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    # shellcheck disable=SC2086
    openssl req -x509 $ec -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
        -subj /CN=compare-ca >/dev/null 2>&1
    # shellcheck disable=SC2086
    openssl req $ec -keyout "$t/key.pem" -out "$t/csr.pem" \
        -subj /CN=compare >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$t/ext"
    openssl x509 -req -in "$t/csr.pem" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 2 -extfile "$t/ext" -out "$t/cert.pem" \
        >/dev/null 2>&1
}

# start_cluster NAME BINARY FIRST_PORT [tls]: members NAME0..2, client
# ports FIRST..FIRST+2, peer ports FIRST+3..FIRST+5, https and
# certificate authentication on both when "tls" is given. Sets
# <NAME>_pids, <NAME>_eps, <NAME>_tls (cairn-bench's TLS arguments).
start_cluster() {
    name=$1 bin=$2 p=$3 sch=http tlsargs="" benchtls=""
    if [ "${4:-}" = tls ]; then
        t=$dir/tls sch=https
        tlsargs="--cert-file $t/cert.pem --key-file $t/key.pem --trusted-ca-file $t/ca.pem --client-cert-auth --peer-cert-file $t/cert.pem --peer-key-file $t/key.pem --peer-trusted-ca-file $t/ca.pem --peer-client-cert-auth"
        benchtls="--cacert $t/ca.pem --cert $t/cert.pem --key $t/key.pem"
    fi
    cluster="" eps="" cpids=""
    for i in 0 1 2; do
        cluster="$cluster${cluster:+,}$name$i=$sch://127.0.0.1:$((p + 3 + i))"
        eps="$eps${eps:+,}$sch://127.0.0.1:$((p + i))"
    done
    for i in 0 1 2; do
        c=$sch://127.0.0.1:$((p + i)) pe=$sch://127.0.0.1:$((p + 3 + i))
        mkdir -p "$dir/$name$i"
        # shellcheck disable=SC2086
        "$bin" --name "$name$i" --data-dir "$dir/$name$i/data" \
            --listen-client-urls "$c" --advertise-client-urls "$c" \
            --listen-peer-urls "$pe" --initial-advertise-peer-urls "$pe" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "$name-compare" $tlsargs \
            >"$dir/$name$i/log" 2>&1 &
        pids="$pids $!" cpids="$cpids $!"
    done
    eval "${name}_pids=\"$cpids\" ${name}_eps=$eps ${name}_tls=\"$benchtls\""
}

# ready EPS [TLSARGS]: whether a leader serves writes within about 20 s.
ready() {
    n=0
    while [ $n -lt 40 ]; do
        # shellcheck disable=SC2086
        if "$BENCH" --endpoints "$1" ${2:-} --timeout-ms 1000 put --total 1 \
            2>/dev/null | grep -q 'RESULT put .* errors=0$'; then
            return 0
        fi
        n=$((n + 1))
        sleep 0.5
    done
    return 1
}

ctx_switches() { # voluntary context switches of every thread of the given pids
    for p in "$@"; do cat "/proc/$p/task/"*/status 2>/dev/null; done |
        awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}'
}

cpu_ticks() { # sum of utime+stime over the given pids
    t=0
    for p in "$@"; do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo $t
}

# shellcheck source=bench/workloads.sh
. "$here/bench/workloads.sh"

# run SYSTEM WORKLOAD ROUND: one bench run; appends "qps p50 p99 errors cpu_s
# switches" (the servers' voluntary context switches) to $dir/res.SYSTEM.WORKLOAD
run() {
    eval "eps=\$${1}_eps cp=\$${1}_pids btls=\$${1}_tls"
    # shellcheck disable=SC2086
    before=$(cpu_ticks $cp)
    # shellcheck disable=SC2086
    cs_before=$(ctx_switches $cp)
    # shellcheck disable=SC2046
    log="$dir/out.$1.$2.$3"
    # shellcheck disable=SC2086
    "$BENCH" --endpoints "$eps" $btls $(args_for "$2") >"$log" 2>&1 || true
    out=$(tail -n 1 "$log")
    # shellcheck disable=SC2086
    after=$(cpu_ticks $cp)
    # shellcheck disable=SC2086
    cs_after=$(ctx_switches $cp)
    case $out in
    RESULT*) ;;
    *) out="RESULT $2 qps=0 p50_ms=0 p99_ms=0 errors=-1" ;;
    esac
    echo "$out" | awk -v cpu="$((after - before))" -v tck="$TCK" -v cs="$((cs_after - cs_before))" '{
        for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %.2f %d\n", v["qps"], v["p50_ms"], v["p99_ms"], v["errors"], cpu / tck, cs
    }' >>"$dir/res.$1.$2"
    echo "round $3 $1 $2: $out cpu_s=$(awk "BEGIN{printf \"%.2f\", $((after - before)) / $TCK}")" >&2
    # the kinds of errors, when there were any
    sed -n '/^Errors:/,/^RESULT/p' "$log" | grep -v '^RESULT' >&2 || true
}

median() { # median of column $2 in file $1
    awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2];
        else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ratio() { # $1 / $2, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo), $(uname -sr)"
echo "etcd: $("$ETCD" --version 2>/dev/null | head -n 1)"

start_cluster etcd "$ETCD" "$PORT_BASE"
cairn_na=""
if [ ! -x "$CAIRN" ]; then
    cairn_na="$CAIRN is not built"
else
    start_cluster cairn "$CAIRN" $((PORT_BASE + 10))
fi
ready "$etcd_eps" || { echo "compare-etcd: etcd cluster did not come up (logs in $dir)" >&2; KEEP=1; exit 1; }
if [ -z "$cairn_na" ] && ! ready "$cairn_eps"; then
    cairn_na="cairn does not serve the etcd v3 API at $cairn_eps yet"
    # shellcheck disable=SC2154
    for p in $cairn_pids; do kill "$p" 2>/dev/null || true; done
fi
[ -n "$cairn_na" ] && echo "cairn: n/a ($cairn_na)"
tls_na=""
if [ "$TLS" = 1 ]; then
    if [ -n "$cairn_na" ]; then
        tls_na="cairn: $cairn_na"
    elif ! command -v openssl >/dev/null; then
        tls_na="no openssl to make certificates"
    else
        make_certs
        start_cluster etcdtls "$ETCD" $((PORT_BASE + 20)) tls
        start_cluster cairntls "$CAIRN" $((PORT_BASE + 30)) tls
        # shellcheck disable=SC2154
        ready "$etcdtls_eps" "$etcdtls_tls" || tls_na="the TLS etcd cluster did not come up"
        # shellcheck disable=SC2154
        [ -z "$tls_na" ] && ! ready "$cairntls_eps" "$cairntls_tls" && tls_na="the TLS cairn cluster did not come up"
    fi
    [ -n "$tls_na" ] && echo "TLS: n/a ($tls_na; logs in $dir)" && KEEP=1
fi

# the floor of single-client put latency: one fdatasync and one loopback
# round trip, measured here and now (4 KiB overwrites of a preallocated
# file, as a WAL segment is written, so that the sync carries no size
# change). The probe also reports the CPU time (user + system) of each
# write and fdatasync: every member pays it once per put, whatever the
# server does around it.
sync_probe=$(python3 - "$dir/sync.probe" 2>/dev/null <<'PY' || echo "n/a n/a"
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"\0" * 4096 * 500); os.fsync(fd)
n = 500; c = time.process_time(); t = time.perf_counter()
for i in range(n):
    os.pwrite(fd, b"x" * 4096, i * 4096); os.fdatasync(fd)
wall = (time.perf_counter() - t) * 1000 / n
print("%.4f %.4f" % (wall, (time.process_time() - c) * 1000 / n))
PY
)
sync_ms=${sync_probe% *} sync_cpu_ms=${sync_probe#* }
rtt_ms=$(python3 - 2>/dev/null <<'PY' || echo n/a
import socket, time, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
def echo():
    c, _ = s.accept()
    while True:
        d = c.recv(64)
        if not d: break
        c.sendall(d)
threading.Thread(target=echo, daemon=True).start()
c = socket.create_connection(s.getsockname()); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n = 2000; t = time.perf_counter()
for _ in range(n):
    c.sendall(b"x"); c.recv(64)
print("%.4f" % ((time.perf_counter() - t) * 1000 / n))
PY
)
echo "floor: fdatasync ${sync_ms} ms (${sync_cpu_ms} ms of CPU) + loopback round trip ${rtt_ms} ms"

r=1
while [ "$r" -le "$ROUNDS" ]; do
    for w in $WORKLOADS; do
        [ -z "$cairn_na" ] && run cairn "$w" "$r"
        run etcd "$w" "$r"
        if [ "$TLS" = 1 ] && [ -z "$tls_na" ]; then
            run cairntls "$w" "$r"
            run etcdtls "$w" "$r"
        fi
    done
    r=$((r + 1))
done

printf '\n%-16s %12s %12s %6s | %9s %9s %6s | %8s %8s %6s | %s\n' \
    workload "etcd qps" "cairn qps" ratio "etcd p99" "cairn p99" ratio \
    "etcd cpu" "cairn cpu" ratio "errors e/c"
for w in $WORKLOADS; do
    eq=$(median "$dir/res.etcd.$w" 1) ep=$(median "$dir/res.etcd.$w" 3)
    ec=$(median "$dir/res.etcd.$w" 5) ee=$(median "$dir/res.etcd.$w" 4)
    if [ -z "$cairn_na" ]; then
        cq=$(median "$dir/res.cairn.$w" 1) cpp=$(median "$dir/res.cairn.$w" 3)
        cc=$(median "$dir/res.cairn.$w" 5) ce=$(median "$dir/res.cairn.$w" 4)
    else
        cq=n/a cpp=n/a cc=n/a ce=n/a
    fi
    printf '%-16s %12s %12s %6s | %9s %9s %6s | %8s %8s %6s | %s/%s\n' \
        "$w" "$eq" "$cq" "$(ratio "$cq" "$eq")" "$ep" "$cpp" "$(ratio "$cpp" "$ep")" \
        "$ec" "$cc" "$(ratio "$cc" "$ec")" "$ee" "$ce"
    echo "RESULT compare workload=$w etcd_qps=$eq cairn_qps=$cq qps_ratio=$(ratio "$cq" "$eq") etcd_p99_ms=$ep cairn_p99_ms=$cpp p99_ratio=$(ratio "$cpp" "$ep") etcd_cpu_s=$ec cairn_cpu_s=$cc cpu_ratio=$(ratio "$cc" "$ec") etcd_errors=$ee cairn_errors=$ce" >>"$dir/results"
done
echo "(qps and p99 in ms are medians over $ROUNDS rounds; cpu: server CPU seconds per run, all three members)"
case " $WORKLOADS " in
*" put-1 "*)
    floor=$(awk -v a="$sync_ms" -v b="$rtt_ms" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.4f\n", a + b }')
    e1=$(median "$dir/res.etcd.put-1" 2)
    c1=n/a
    [ -z "$cairn_na" ] && c1=$(median "$dir/res.cairn.put-1" 2)
    echo "put-1 p50 against the floor ($floor ms): etcd $e1 ms ($(ratio "$e1" "$floor")x), cairn $c1 ms ($(ratio "$c1" "$floor")x)"
    # What three members cannot avoid: the leader's fdatasync runs beside
    # the follower's, but the follower's comes after a peer round trip, so
    # a put waits for at least two round trips and one fdatasync; and each
    # of the three members spends one fdatasync's CPU on every put.
    floor3=$(awk -v a="$sync_ms" -v b="$rtt_ms" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.4f\n", a + 2 * b }')
    echo "put-1 p50 against three members' floor, one fdatasync and two round trips ($floor3 ms): etcd $(ratio "$e1" "$floor3")x, cairn $(ratio "$c1" "$floor3")x"
    n1=$(args_for put-1 | sed 's/.*--total \([0-9]*\).*/\1/')
    ecpu=$(median "$dir/res.etcd.put-1" 5) ccpu=n/a
    [ -z "$cairn_na" ] && ccpu=$(median "$dir/res.cairn.put-1" 5)
    ecp1=$(awk -v c="$ecpu" -v n="$n1" 'BEGIN { if (c == "n/a") print "n/a"; else printf "%.4f\n", c * 1000 / n }')
    cp1=$(awk -v c="$ccpu" -v n="$n1" 'BEGIN { if (c == "n/a") print "n/a"; else printf "%.4f\n", c * 1000 / n }')
    sync3=$(awk -v a="$sync_cpu_ms" 'BEGIN { if (a == "n/a") print "n/a"; else printf "%.4f\n", 3 * a }')
    echo "put-1 CPU per put: etcd $ecp1 ms, cairn $cp1 ms; three fdatasyncs' own CPU $sync3 ms = $(ratio "$sync3" "$ecp1")x etcd's put (cairn above it: $(awk -v a="$cp1" -v b="$sync3" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.4f", a - b }') ms)"
    # CPU follows context switches on a VM (each block and wake-up from
    # idle costs the same for both systems), so count them too.
    ecs=$(median "$dir/res.etcd.put-1" 6) ccs=n/a
    [ -z "$cairn_na" ] && ccs=$(median "$dir/res.cairn.put-1" 6)
    ecs1=$(awk -v c="$ecs" -v n="$n1" 'BEGIN { if (c == "n/a") print "n/a"; else printf "%.1f\n", c / n }')
    ccs1=$(awk -v c="$ccs" -v n="$n1" 'BEGIN { if (c == "n/a") print "n/a"; else printf "%.1f\n", c / n }')
    per_cs() { awk -v c="$1" -v s="$2" 'BEGIN { if (c == "n/a" || s == "n/a" || s + 0 == 0) print "n/a"; else printf "%.1f\n", c * 1000 / s }'; }
    echo "put-1 voluntary context switches per put, all threads of all members: etcd $ecs1, cairn $ccs1 ($(ratio "$ccs1" "$ecs1")x); CPU per switch: etcd $(per_cs "$ecp1" "$ecs1") us, cairn $(per_cs "$cp1" "$ccs1") us"
    echo "RESULT compare-floor sync_ms=$sync_ms sync_cpu_ms=$sync_cpu_ms rtt_ms=$rtt_ms floor_ms=$floor floor3_ms=$floor3 etcd_put1_p50_ms=$e1 cairn_put1_p50_ms=$c1 etcd_put1_cpu_ms=$ecp1 cairn_put1_cpu_ms=$cp1 sync3_cpu_to_etcd=$(ratio "$sync3" "$ecp1") etcd_put1_switches=$ecs1 cairn_put1_switches=$ccs1" >>"$dir/results"
    ;;
esac
if [ "$TLS" = 1 ] && [ -z "$tls_na" ]; then
    echo
    echo "TLS (client and peer TLS with certificate authentication on both, same certificates):"
    printf '%-16s %12s %12s %9s | %12s %12s\n' workload "cairn qps" "cairn-tls" "tls/plain" "etcd-tls" "cairn/etcd"
    for w in $WORKLOADS; do
        cq=$(median "$dir/res.cairn.$w" 1) tq=$(median "$dir/res.cairntls.$w" 1)
        eq=$(median "$dir/res.etcdtls.$w" 1) pq=$(median "$dir/res.etcd.$w" 1)
        tp=$(median "$dir/res.cairntls.$w" 3) ep=$(median "$dir/res.etcdtls.$w" 3)
        printf '%-16s %12s %12s %9s | %12s %12s\n' "$w" "$cq" "$tq" \
            "$(ratio "$tq" "$cq")" "$eq" "$(ratio "$tq" "$eq")"
        echo "RESULT compare-tls workload=$w cairn_qps=$cq cairn_tls_qps=$tq tls_to_plain=$(ratio "$tq" "$cq") etcd_qps=$pq etcd_tls_qps=$eq etcd_tls_to_plain=$(ratio "$eq" "$pq") cairn_tls_to_etcd_tls=$(ratio "$tq" "$eq") cairn_tls_p99_ms=$tp etcd_tls_p99_ms=$ep"
    done
fi
echo
echo "peak RSS after the load (VmHWM):"
for p in $etcd_pids ${cairn_pids:-} ${etcdtls_pids:-} ${cairntls_pids:-}; do
    [ -r "/proc/$p/status" ] || continue
    echo "  pid $p $(cat "/proc/$p/comm"): $(awk '/VmHWM/ {print $2, $3}' "/proc/$p/status")"
done
hwm_kb() { for p in "$@"; do awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null; done; }
# shellcheck disable=SC2086
emax=$(hwm_kb $etcd_pids | sort -n | tail -n 1) emin=$(hwm_kb $etcd_pids | sort -n | head -n 1)
# shellcheck disable=SC2086
cmax=$(hwm_kb ${cairn_pids:-} | sort -n | tail -n 1)
echo "RESULT compare-rss etcd_min_kb=${emin:-n/a} etcd_max_kb=${emax:-n/a} cairn_max_kb=${cmax:-n/a} worst_ratio=$(ratio "${cmax:-n/a}" "${emin:-n/a}")" >>"$dir/results"
[ -n "$cairn_na" ] && echo "cairn columns: n/a ($cairn_na)"
echo
cat "$dir/results"
exit 0
