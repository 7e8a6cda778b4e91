#!/usr/bin/env bash
# Runs the chaos harness (tests/chaos/README.md): the real sync engine against
# a model POP3 server, faulty stores and kill -9, checking after every step
# that no message is lost.
#
# Usage: scripts/chaos.sh --seed S --steps N [harness options]
#        scripts/chaos.sh --minutes M [--seed S] [--steps N] [harness options]
#   --seed S     the seed (default 1; with --minutes, the first seed, default the time)
#   --steps N    steps per seed (default 2000)
#   --minutes M  run seed after seed (S, S+1, ...) until M minutes are up
#   harness options, passed on: --faults A,B | --without A,B (fault classes,
#   see popvault_chaos --help),
#   --stores N (default 2), --rss-mb MB, --no-drain, --keep
# Builds build/release's popvault_chaos first (configuring it if missing).
# Prints each seed's summary and the totals; on the first violation prints
# the harness's one-line reproduction and exits 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POPVAULT_BUILD_DIR:-$root/build/release}"
bin="$build/tests/chaos/popvault_chaos"

seed="" steps=2000 minutes="" pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
    --steps) steps="${2:?--steps needs a number}"; shift 2 ;;
    --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
    --faults|--without|--rss-mb|--stores) pass+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --no-drain|--keep) pass+=("$1"); shift ;;
    *) echo "chaos.sh: unknown option '$1'" >&2
       echo "usage: scripts/chaos.sh --seed S --steps N | --minutes M [--faults A,B] [--without A,B]" >&2
       exit 2 ;;
  esac
done

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOPVAULT_WERROR=ON >/dev/null
fi
ninja -C "$build" -j"${POPVAULT_JOBS:-2}" popvault_chaos >/dev/null

if [ -z "$minutes" ]; then
  exec "$bin" --seed "${seed:-1}" --steps "$steps" "${pass[@]}"
fi
: "${seed:=$(date +%s)}"

# --minutes: fresh seeds until the time is up; the last one stops at the deadline.
deadline=$(( $(date +%s) + $(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }') ))
seeds=0 t_steps=0 t_passes=0 t_kills=0 t_deletions=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  left=$(awk -v s=$(( deadline - $(date +%s) )) 'BEGIN { printf "%.3f", s / 60 }')
  set +e
  out="$("$bin" --seed "$seed" --steps "$steps" --minutes "$left" "${pass[@]}")"
  rc=$?
  set -e
  echo "$out"
  if [ $rc -ne 0 ]; then
    echo "chaos.sh: seed $seed failed after $seeds clean seed(s)" >&2
    exit 1
  fi
  line="$(grep '^chaos: seed' <<<"$out")"
  field() { sed -E "s/.* $1 ([0-9]+).*/\\1/" <<<"$line"; }
  t_steps=$(( t_steps + $(field steps) ))
  t_passes=$(( t_passes + $(field passes) ))
  t_kills=$(( t_kills + $(field kills) ))
  t_deletions=$(( t_deletions + $(field deletions) ))
  seeds=$(( seeds + 1 )) seed=$(( seed + 1 ))
done
echo "chaos.sh: $seeds seed(s): steps $t_steps, passes $t_passes, kills $t_kills, deletions $t_deletions, lost=0 deleted_unverified=0 audit_missing=0"
