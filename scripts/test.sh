#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test twice: a Release build
# with warnings as errors, then an ASan+UBSan build. Exits non-zero on any
# failure. CI (.ci/run) calls exactly this.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh

# A user's clone may lack ../shared/corpus (the corpus test then reports
# itself skipped); CI always has it, so there its absence is an error.
if [ "${CI:-}" = true ] && [ ! -f "$root/../shared/corpus/MANIFEST.tsv" ] &&
  [ -z "${POPVAULT_CORPUS_DIR:-}" ]; then
  echo "test.sh: CI run without ../shared/corpus: the corpus tests would be skipped" >&2
  exit 1
fi

# CTest's test list is ';'-separated: a Catch test name with ';' would be
# split into tests that fail for no reason.
if grep -rnE 'TEST_CASE\("[^"]*;' tests; then
  echo "test.sh: a TEST_CASE name above contains ';'" >&2
  exit 1
fi

run_suite() {
  local name="$1"; shift
  local build="$root/build/$name"
  echo "=== $name: configure and build"
  cmake -S "$root" -B "$build" -G Ninja "$@" >/dev/null
  cmake --build "$build" --parallel "$(nproc)"
  echo "=== $name: ctest"
  ctest --test-dir "$build" --output-on-failure --timeout 600
}

run_suite release -DCMAKE_BUILD_TYPE=Release -DPOPVAULT_WERROR=ON

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -O1 -g1: sanitizer reports keep function names and line numbers, and the
# build (the longest step of CI on two cores) is much cheaper than at -O2 -g.
run_suite asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DPOPVAULT_WERROR=ON -DPOPVAULT_SANITIZE=ON

# libFuzzer over the POP3 reply reader, parsers and session: its own clang build
# (build/fuzz) and a fixed 30 s; scripts/fuzz.sh runs it as long as asked.
echo "=== fuzz: pop3_reply_fuzzer"
bash scripts/fuzz.sh --seconds 30 --quiet
