#!/usr/bin/env bash
# Installs the Debian packages cairn's build and tests need, and only those
# missing. Idempotent: with everything present it changes nothing and says so
# only with --verbose.
#   scripts/deps.sh            build + test packages
#   scripts/deps.sh lint       also the formatting and lint tools
#   scripts/deps.sh compat     also Go and etcd's source, for etcd's e2e suite
#   scripts/deps.sh --check    exit 1 if anything is missing, install nothing
set -euo pipefail

build_pkgs=(gcc cmake ninja-build pkg-config
            libuv1-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
            liblmdb-dev libssl-dev libcrypt-dev)
# the interop and compat tests run Debian's etcd 3.4 and etcdctl beside cairn;
# the cluster and compat tests are driven by python3 (standard library only);
# the TLS cluster tests make their certificates with the openssl CLI
test_pkgs=(libcmocka-dev etcd-client etcd-server python3 openssl)
lint_pkgs=(clang-format clang-tidy cppcheck)
# etcd's end-to-end suite (tests/compat/etcd-e2e.sh): its source and Go
compat_pkgs=(golang-go golang-etcd-server-dev)

want=("${build_pkgs[@]}" "${test_pkgs[@]}")
check_only=0
for arg in "$@"; do
  case "$arg" in
    lint) want+=("${lint_pkgs[@]}") ;;
    compat) want+=("${compat_pkgs[@]}") ;;
    --check) check_only=1 ;;
    *) echo "deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ $check_only -eq 1 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# etcd-server's package would start an etcd on 127.0.0.1:2379 where systemd
# runs, taking cairn's default port: forbid service starts while installing.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  own_policy=1
fi
status=0
$sudo apt-get update -qq &&
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
if [ $own_policy -eq 1 ]; then
  $sudo rm -f "$policy"
fi
exit $status
