#!/usr/bin/env bash
# End-to-end demo: build popvault, start a private loopback Dovecot with ~300 realistic
# messages, archive them over implicit TLS, list the archive and prove one message is
# byte-identical to the server's copy. Re-runnable; Dovecot is stopped on exit.
#   scripts/demo.sh            (work dir: $POPVAULT_DEMO_DIR, default /tmp/popvault-demo)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo="${POPVAULT_DEMO_DIR:-/tmp/popvault-demo}"
fixture="$root/tests/fixtures/dovecot.sh"
popvault="$root/build/release/bin/popvault"

step() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

step "Installing dependencies and building"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build/release"
[ -x "$popvault" ] || die "$popvault was not built"

# Only ever wipe a directory this script made (the marker), never an arbitrary path.
if [ -e "$demo" ]; then
  [ -e "$demo/.popvault-demo" ] || die "$demo exists and was not made by demo.sh; remove it or set POPVAULT_DEMO_DIR"
  "$fixture" stop "$demo/dovecot"
  rm -rf "$demo"
fi
mkdir -p "$demo"
touch "$demo/.popvault-demo"
trap '"$fixture" stop "$demo/dovecot"' EXIT

step "Starting a private Dovecot on 127.0.0.1 (mailbox: demo)"
"$fixture" start "$demo/dovecot"
env_file="$demo/dovecot/env"
get() { sed -n "s/^$1=//p" "$env_file"; }

umask 077 # the password file and archive are private
get DEMO_PASSWORD >"$demo/demo.pass"
cfg="$demo/popvault.ini"
cat >"$cfg" <<EOF
[agent]
state_dir = $demo/state
log_level = information

[store.local]
plugin = rocksdb
path = $demo/archive
compression_level = 3

[account.demo]
host = $(get POP3_HOST)
port = $(get POP3S_PORT)
tls = implicit
ca_file = $(get CA_FILE)
user = $(get DEMO_USER)
password_file = $demo/demo.pass
stores = local
retention = keep
poll_interval = 300
EOF
echo "config: $cfg"
cat "$cfg"

step "popvault check-config"
"$popvault" check-config --config "$cfg"

step "popvault sync (first run archives every message)"
time "$popvault" sync --config "$cfg"

step "popvault sync again (nothing new to fetch)"
"$popvault" sync --config "$cfg"

step "popvault list (first 10 of $(get DEMO_MESSAGES) on the server)"
"$popvault" list --config "$cfg" >"$demo/list.txt"
head -n 10 "$demo/list.txt"
echo "... $(wc -l <"$demo/list.txt") lines in all"

step "popvault cat vs. an independent POP3 read of the same mailbox"
# pop3_dump.py is a separate stdlib-only client: <uidl hex> <sha256> <size> per message.
python3 "$root/tests/tools/pop3_dump.py" --host "$(get POP3_HOST)" --port "$(get POP3S_PORT)" \
  --tls implicit --cafile "$(get CA_FILE)" --user "$(get DEMO_USER)" \
  --password "$(get DEMO_PASSWORD)" >"$demo/server.tsv"
# The largest message has base64 attachments: the most bytes that could go wrong.
read -r uidl_hex server_sha size < <(sort -t$'\t' -k3,3nr "$demo/server.tsv" | head -n 1)
uidl=$(python3 -c 'import sys; print(bytes.fromhex(sys.argv[1]).decode("latin-1"))' "$uidl_hex")
echo "server: UIDL $uidl, $size bytes, sha256 $server_sha"
"$popvault" cat --config "$cfg" "$server_sha" >"$demo/message.eml" ||
  die "popvault cat found no archived message with the server's sha256 $server_sha"
archive_sha=$(sha256sum "$demo/message.eml" | cut -d' ' -f1)
echo "archive: $(wc -c <"$demo/message.eml") bytes sha256 $archive_sha"
head -n 12 "$demo/message.eml"
[ "$archive_sha" = "$server_sha" ] || die "MISMATCH: the archived copy differs from the server's"
echo "OK: the archived message is byte-identical to the server's copy"
