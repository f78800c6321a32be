#!/usr/bin/env bash
# Acceptance of issue 8: the same etcdctl 3.4 commands (ETCDCTL_API=3)
# against a three-member cairn cluster and a three-member etcd 3.4 cluster
# (Debian's etcd-server), started side by side by this script; each
# command's output, with member/cluster/lease ids, ports and timings
# normalised, must be equal. Prints one "PASS name" / "FAIL name" line per
# command (with a diff for failures) and "N passed, M failed".
#
#   tests/compat/etcdctl.sh CAIRN_BINARY [--keep]
#
# Ports are picked free by the script; every process it starts is stopped
# by its pid at the end, failure or not. --keep leaves the scratch folder.
set -uo pipefail

cairn=${1:-}
keep=0
[ "${2:-}" = "--keep" ] && keep=1
if [ -z "$cairn" ] || [ ! -x "$cairn" ]; then
  echo "usage: $0 CAIRN_BINARY [--keep]" >&2
  exit 2
fi
for b in etcd etcdctl python3; do
  command -v "$b" >/dev/null || { echo "etcdctl.sh: needs $b" >&2; exit 2; }
done
export ETCDCTL_API=3

work=$(mktemp -d /tmp/cairn-compat.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  [ $keep -eq 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# Twelve free ports, bound together so none repeats, from 10000-19999:
# below the kernel's ephemeral range (which the members' own outgoing
# connections draw from) and etcd's e2e harness (20000 and up).
read -r -a ports < <(python3 - <<'EOF'
import random, socket
socks = []
rng = random.Random()
while len(socks) < 12:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", rng.randrange(10000, 20000)))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

# start KIND BINARY FIRST_PORT_INDEX: three members m1..m3.
start() {
  local kind=$1 bin=$2 base=$3 cluster="" i
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$((i + 1))=http://127.0.0.1:${ports[base + 3 + i]}"
  done
  for i in 0 1 2; do
    local c=${ports[base + i]} p=${ports[base + 3 + i]}
    "$bin" --name "m$((i + 1))" --data-dir "$work/$kind-$i" \
      --listen-client-urls "http://127.0.0.1:$c" \
      --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" \
      --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$cluster" --initial-cluster-token compat \
      --initial-cluster-state new >"$work/$kind-$i.log" 2>&1 &
    pids+=($!)
  done
}
start etcd etcd 0
start cairn "$cairn" 6

# Endpoints without the scheme: see docs/api.md (rpc and grpc-go's
# authority for "http://" passthrough targets).
eps() { echo "127.0.0.1:${ports[$1]},127.0.0.1:${ports[$1 + 1]},127.0.0.1:${ports[$1 + 2]}"; }
first() { echo "127.0.0.1:${ports[$1]}"; }
# A generous liveness bound (60 s): under a loaded machine (make test runs
# tests side by side) a cluster's first election can take several rounds.
wait_healthy() {
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    etcdctl --endpoints="$(eps "$1")" --dial-timeout=1s --command-timeout=1s \
      endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "etcdctl.sh: the $2 cluster did not become healthy" >&2
  tail -n 5 "$work/$2-"*.log >&2
  return 1
}
wait_healthy 0 etcd || exit 1
wait_healthy 6 cairn || exit 1

# Normalisation: ports by their role, 16-hex-digit ids, decimal ids in
# JSON (etcdctl prints ids with %x or %16x: an id with leading zero digits
# is shorter), timings, database sizes (bbolt's and LMDB's files differ),
# raft terms (a loaded machine may need a second election on either side).
normalise() {
  local base=$1 i sedargs=()
  for i in 0 1 2; do
    sedargs+=(-e "s/127\.0\.0\.1:${ports[base + i]}\b/HOST:C$((i + 1))/g")
    sedargs+=(-e "s/127\.0\.0\.1:${ports[base + 3 + i]}\b/HOST:P$((i + 1))/g")
  done
  sed "${sedargs[@]}" \
    -e 's/^Member *[0-9a-f]\{1,16\} \(added to\|updated in\|removed from\) cluster *[0-9a-f]\{1,16\}$/Member ID \1 cluster ID/' \
    -e 's/^[0-9a-f]\{1,16\}, \(started\|unstarted\), /ID, \1, /' \
    -e 's/\b[0-9a-f]\{16\}\b/ID/g' \
    -e 's/"\(cluster_id\|member_id\|ID\|leader\|id\)":[0-9]*/"\1":0/g' \
    -e 's/"\(ClusterID\|MemberID\|ID\)" : [0-9]*/"\1" : N/g' \
    -e 's/took = [0-9.]*[a-zµ]*/took = T/g' \
    -e 's/"ts":"[^"]*"/"ts":T/g' \
    -e 's/"\(ts\|took\)":[0-9.e+-]*/"\1":T/g' \
    -e 's/remaining([0-9]*s)/remaining(Ns)/g' \
    -e 's|^\([a-z]*/\)[0-9a-f]\{1,16\}$|\1ID|' \
    -e 's/"\(took\|size\)":"[^"]*"/"\1":T/g' \
    -e "s|$work/snap\.[a-z]*\.db|SNAP|g" \
    -e 's/client-[0-9a-f-]*/client-U/g' \
    -e 's/"\(dbSize\|dbSizeInUse\|raftIndex\|raftAppliedIndex\|raftTerm\|raft_term\)":[0-9]*/"\1":0/g' \
    -e 's/"RaftTerm" : [0-9]*/"RaftTerm" : N/g'
}

# Members in name order: their ids, and so etcd's order (by id), differ
# between the two clusters.
sort_members() {
  python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("ETCD_INITIAL_CLUSTER="):
        q = chr(34)
        v = line.strip()[len("ETCD_INITIAL_CLUSTER="):].strip(q)
        line = "ETCD_INITIAL_CLUSTER=" + q + ",".join(sorted(v.split(","))) + q + "\n"
    try:
        d = json.loads(line)
    except ValueError:
        sys.stdout.write(line)
        continue
    if isinstance(d, dict) and "members" in d:
        d["members"].sort(key=lambda m: m.get("name", ""))
        line = json.dumps(d, separators=(",", ":")) + "\n"
    sys.stdout.write(line)
' | sort
}

declare -A ids
subst() {
  local v=$2
  v=${v//@LEASE/${ids[$1.lease]:-}}
  v=${v//@MEMBER/${ids[$1.member]:-}}
  v=${v//@SNAP/$work/snap.$1.db}
  printf '%s' "$v"
}
# capture NAME REGEX: the first hex id after REGEX in the last outputs.
capture() {
  local side
  for side in etcd cairn; do
    ids[$side.$1]=$(grep -o "$2  *[0-9a-f]*" "$work/out.$side" | head -1 |
      awk '{print $NF}')
  done
}

pass=0
fail=0
# check NAME ARGS...: etcdctl ARGS against both clusters' first member (or
# member AT, 0-2, when set); stdin (if any) is given to both. With WAIT=s set, etcdctl is stopped
# after s seconds (watch).
check() {
  local name=$1
  shift
  local in="$work/stdin" t=()
  [ -n "${WAIT:-}" ] && t=(timeout "$WAIT")
  cat >"$in"
  local a ea=() ca=()
  # @LEASE and @MEMBER stand for ids each cluster gave (see capture)
  for a in "$@"; do
    ea+=("$(subst etcd "$a")")
    ca+=("$(subst cairn "$a")")
  done
  local at=${AT:-0}
  "${t[@]}" etcdctl --endpoints="$(first "$at")" "${ea[@]}" <"$in" \
    >"$work/out.etcd" 2>&1
  echo "exit $?" >>"$work/out.etcd"
  "${t[@]}" etcdctl --endpoints="$(first $((6 + at)))" "${ca[@]}" <"$in" \
    >"$work/out.cairn" 2>&1
  echo "exit $?" >>"$work/out.cairn"
  normalise 0 <"$work/out.etcd" >"$work/n.etcd"
  normalise 6 <"$work/out.cairn" >"$work/n.cairn"
  if [ -n "${MEMBERS:-}" ]; then
    sort_members <"$work/n.etcd" >"$work/s" && mv "$work/s" "$work/n.etcd"
    sort_members <"$work/n.cairn" >"$work/s" && mv "$work/s" "$work/n.cairn"
  fi
  if diff -u "$work/n.etcd" "$work/n.cairn" >"$work/diff"; then
    echo "PASS $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    sed 's/^/    /' "$work/diff" | head -30
    fail=$((fail + 1))
  fi
}

check put put foo bar </dev/null
check get get foo </dev/null
check get-json get foo -w json </dev/null
check get-fields get foo -w fields </dev/null
check put2 put foo2 bar2 </dev/null
check put3 put zoo z </dev/null
check get-prefix get --prefix foo </dev/null
check get-keys-only get --prefix foo --keys-only </dev/null
check get-print-value-only get --prefix foo --print-value-only </dev/null
check get-limit get --prefix foo --limit 1 -w json </dev/null
check get-sort get --prefix foo --sort-by=KEY --order=DESCEND </dev/null
check get-sort-modify get --prefix "" --sort-by=MODIFY --order=ASCEND </dev/null
check get-from-key get --from-key foo2 </dev/null
check get-rev get foo --rev 2 </dev/null
check put-prev put foo bar3 --prev-kv </dev/null
check txn txn -w json <<'EOF'
value("foo") = "bar3"

put foo bar4
get foo

get zoo

EOF
check txn-failure txn <<'EOF'
version("foo") = "99"

put foo nope

get foo

EOF
WAIT=2 check watch-rev watch foo --rev 2 </dev/null
WAIT=2 check watch-prefix-prev-kv watch --prefix foo --rev 2 --prev-kv </dev/null
check del-prev del foo2 --prev-kv </dev/null
check del-prefix del --prefix zo </dev/null
check get-all get --prefix "" -w json </dev/null
check compaction compaction 3 </dev/null
check get-compacted get foo --rev 2 </dev/null
MEMBERS=1 check member-list member list </dev/null
MEMBERS=1 check member-list-json member list -w json </dev/null
check endpoint-health endpoint health </dev/null
check endpoint-status endpoint status -w json </dev/null
check endpoint-hashkv endpoint hashkv </dev/null
check alarm-list alarm list </dev/null
check defrag defrag </dev/null
check lease-list-empty lease list </dev/null
check lease-timetolive-missing lease timetolive 1234 </dev/null
check lease-grant lease grant 600 </dev/null
capture lease lease
check put-lease put lk lv --lease=@LEASE </dev/null
check lease-list lease list </dev/null
check lease-timetolive-keys lease timetolive @LEASE --keys </dev/null
check lease-keep-alive-once lease keep-alive --once @LEASE </dev/null
# on every member: at least two are followers, which forward it to the leader
AT=1 check lease-keep-alive-m2 lease keep-alive --once @LEASE </dev/null
AT=2 check lease-keep-alive-m3 lease keep-alive --once @LEASE </dev/null
check lease-revoke lease revoke @LEASE </dev/null
check get-lease-key get lk </dev/null
# users and roles (authentication stays disabled: docs/auth.md)
check auth-enable-no-root auth enable </dev/null
check user-add user add root:rootpw </dev/null
check user-add-exists user add root:x </dev/null
check user-add-bob user add bob:pw </dev/null
check user-add-no-password user add carol --no-password </dev/null
check user-list user list </dev/null
check user-get-missing user get nobody </dev/null
check role-add role add r1 </dev/null
check role-add-exists role add r1 </dev/null
check role-grant-read role grant-permission r1 read foo </dev/null
check role-grant-prefix role grant-permission r1 readwrite foo --prefix </dev/null
check role-grant-range role grant-permission r1 write a z </dev/null
check role-grant-again role grant-permission r1 write foo </dev/null
check role-grant-missing role grant-permission nope read k </dev/null
check role-get role get r1 </dev/null
check role-get-json role get r1 -w json </dev/null
check role-revoke-perm role revoke-permission r1 foo --prefix </dev/null
check role-revoke-perm-missing role revoke-permission r1 nothere </dev/null
check user-grant-role user grant-role bob r1 </dev/null
check user-grant-role-missing user grant-role bob r2 </dev/null
check user-grant-root user grant-role bob root </dev/null
AT=1 check user-get-m2 user get bob </dev/null
AT=2 check user-get-detail-m3 user get bob --detail </dev/null
check user-revoke-role user revoke-role bob root </dev/null
check user-revoke-role-missing user revoke-role bob r9 </dev/null
check user-passwd user passwd bob --interactive=false <<<"newpw"
check role-list-json role list -w json </dev/null
check role-delete role delete r1 </dev/null
check user-get-after-role-delete user get bob -w json </dev/null
check user-delete user delete carol </dev/null
check user-delete-missing user delete carol </dev/null
check user-list-json user list -w json </dev/null
check auth-disable auth disable </dev/null
MEMBERS=1 check member-add member add m4 --peer-urls=http://127.0.0.1:9 </dev/null
capture member Member
MEMBERS=1 check member-list-4 member list </dev/null
check member-update member update @MEMBER --peer-urls=http://127.0.0.1:10 </dev/null
check member-remove member remove @MEMBER </dev/null
check snapshot-save snapshot save @SNAP </dev/null
check lock lock mylock echo locked </dev/null
WAIT=2 check elect elect myelection p1 </dev/null

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
