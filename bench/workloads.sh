# workloads.sh: the cairn-bench arguments of each side-by-side workload,
# sourced by compare-etcd.sh and rss-peak.sh so that both drive the same
# load. SCALE (1) multiplies the request counts.
# shellcheck shell=sh

args_for() { # the cairn-bench arguments of a workload
    s=${SCALE:-1}
    case $1 in
    put-1) echo "--conns 1 --clients 1 --total $((2000 * s)) put --key-size 8 --val-size 256 --key-space-size 100000" ;;
    put-100) echo "--conns 10 --clients 100 --total $((20000 * s)) put --key-size 8 --val-size 256 --key-space-size 100000" ;;
    range-l) echo "--conns 10 --clients 100 --total $((20000 * s)) range foo --consistency l" ;;
    range-s) echo "--conns 10 --clients 100 --total $((20000 * s)) range foo --consistency s" ;;
    txn-put) echo "--conns 10 --clients 100 --total $((10000 * s)) txn-put --key-size 8 --val-size 256 --key-space-size 100000" ;;
    watch) echo "--conns 10 watch --watchers 1000 --streams 10 --puts $((100 * s))" ;;
    lease-keepalive) echo "--conns 10 --clients 10000 --total $((50000 * s)) lease-keepalive" ;;
    *) echo "unknown workload $1" >&2; exit 2 ;;
    esac
}
