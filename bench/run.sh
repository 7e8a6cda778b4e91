#!/usr/bin/env bash
# popvault benchmark (issue #6): popvault vs the raw floor, mpop, fetchmail and getmail6,
# on loopback TLS and a 20 ms RTT link, plus poll / verified delete / 200 MB message.
#
#   bench/run.sh [--smoke] [bench.py options...]      (as root; see bench/README.md)
#
# --smoke: small mailbox, 1 run, loopback only, about a minute; exits non-zero only if a
# client fails (never because of a ratio). Options after it go to bench/bench.py
# (--runs N, --slow-runs N, --work DIR, --only archive,poll,delete,huge, --clients ...).
#
# Environment: POPVAULT_BUILD (default build/bench: built here, Release, only the binary and
# the RocksDB plugin), POPVAULT_BIN (use this binary instead, no build), BENCH_WORK.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "bench/run.sh: run as root (namespaces, Dovecot, apt)" >&2; exit 2; }

# The peers and what the harness needs (Debian packages). apt may be busy (others share
# the machine): wait for its lock rather than fail.
need=()
for pair in mpop:mpop fetchmail:fetchmail getmail:getmail6 dovecot:dovecot-pop3d nsenter:util-linux \
  ip:iproute2 openssl:openssl cc:gcc python3:python3; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench/run.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=300 update >/dev/null &&
      apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
[ -c /dev/net/tun ] || { echo "bench/run.sh: /dev/net/tun missing (the 20 ms link needs TUN)" >&2; exit 1; }

work="${BENCH_WORK:-$root/build/bench-work}"
mkdir -p "$work/tools"
for t in pop3floor delaylink rtime; do
  src="$here/tools/$t.c"
  if [ ! -x "$work/tools/$t" ] || [ "$src" -nt "$work/tools/$t" ]; then
    cc -O2 -Wall -Wextra -o "$work/tools/$t" "$src" $([ $t = pop3floor ] && echo "-lssl -lcrypto")
  fi
done

if [ -n "${POPVAULT_BIN:-}" ]; then
  bin="$POPVAULT_BIN"
else
  build="${POPVAULT_BUILD:-$root/build/bench}"
  if [ ! -f "$build/build.ninja" ]; then
    "$root/scripts/install-deps.sh" >/dev/null
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  echo "bench/run.sh: building popvault in $build (popvault + RocksDB plugin only)" >&2
  cmake --build "$build" --parallel "$(nproc)" --target popvault popvault_store_rocksdb >/dev/null
  bin="$build/bin/popvault"
fi
[ -x "$bin" ] || { echo "bench/run.sh: no popvault binary at $bin" >&2; exit 1; }

exec python3 "$here/bench.py" --popvault "$bin" --tools "$work/tools" --work "$work" "$@"
