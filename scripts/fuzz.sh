#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan, build/fuzz) and fuzzes the
# POP3 reply reader/parser/session (tests/fuzz/README.md).
#
# Usage: scripts/fuzz.sh [--seconds N | --forever] [--merge] [--quiet] [-- libFuzzer args...]
#   --seconds N  run N seconds (default 300)
#   --forever    run until stopped (Ctrl-C) or a crash
#   --merge      afterwards, add the scratch corpus's coverage-increasing inputs
#                to the committed seeds (tests/fuzz/corpus/pop3_reply)
#   --quiet      libFuzzer's output only to build/fuzz/pop3_reply.log; print its
#                summary (and on failure its tail)
# New inputs go to build/fuzz/corpus/pop3_reply (the seeds are only read unless
# --merge). Exits non-zero on a crash, leak, timeout or over-long run, and
# prints the path of the saved input ("fuzz.sh: crash input: PATH").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/fuzz"
seeds="$root/tests/fuzz/corpus/pop3_reply"

seconds=300 merge=false quiet=false extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --forever) seconds=0; shift ;;
    --merge) merge=true; shift ;;
    --quiet) quiet=true; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: scripts/fuzz.sh [--seconds N | --forever] [--merge] [--quiet] [-- libFuzzer args]" >&2
       exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds needs a number" >&2; exit 2; }

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done

echo "=== fuzz: configure and build ($build)"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DPOPVAULT_FUZZ=ON \
    -DPOPVAULT_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target pop3_reply_fuzzer --parallel "$(nproc)"
fuzzer="$build/bin/pop3_reply_fuzzer"

corpus="$build/corpus/pop3_reply"
artifacts="$build/artifacts/"
log="$build/pop3_reply.log"
mkdir -p "$corpus" "$artifacts"

# Our checks abort; ASan/UBSan stop at the first error (the fuzzer then saves the input).
# ASan's quarantine of freed memory (256 MB by default) would alone exceed -rss_limit_mb.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:quarantine_size_mb=16"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
args=(
  -max_len=16384       # beyond kMaxLineOctets (4096) and several reads
  -rss_limit_mb=256    # memory must not depend on what the server sends
  -malloc_limit_mb=64  # no single allocation near that
  -timeout=10          # a hang (reader spinning without progress) is a failure
  -use_value_profile=1 # reaches length and number boundaries (4096, 2^32) far sooner
  -max_total_time="$seconds"
  -artifact_prefix="$artifacts"
  -print_final_stats=1
)
[ -z "${extra[*]:-}" ] || args+=("${extra[@]}")

echo "=== fuzz: pop3_reply_fuzzer for $([ "$seconds" = 0 ] && echo ever || echo "${seconds} s")"
status=0
if $quiet; then
  "$fuzzer" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
  grep -E '^(INFO: seed corpus|#[0-9]+ +DONE|stat::)' "$log" || true
  [ "$status" -eq 0 ] || tail -n 60 "$log"
else
  "$fuzzer" "${args[@]}" "$corpus" "$seeds" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
fi

if [ "$status" -ne 0 ]; then
  crash="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
  echo "fuzz.sh: pop3_reply_fuzzer failed (exit $status); log: $log" >&2
  if [ -n "$crash" ]; then
    echo "fuzz.sh: crash input: $crash" >&2
    echo "fuzz.sh: reproduce: $fuzzer $crash" >&2
  fi
  exit 1
fi

if $merge; then
  echo "=== fuzz: merging new coverage into $seeds"
  "$fuzzer" -merge=1 -max_len=16384 -rss_limit_mb=256 "$seeds" "$corpus" 2>&1 | tail -n 3
fi
echo "fuzz.sh: no crash ($(find "$corpus" -type f | wc -l) inputs in $corpus)"
