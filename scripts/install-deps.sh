#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages. Idempotent:
# packages already present are skipped without touching apt's lists.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  clang-14 libfuzzer-14-dev  # scripts/fuzz.sh: libFuzzer targets (tests/fuzz)
  libpoco-dev librocksdb-dev libzstd-dev zstd catch2
  libvalijson-dev  # header-only JSON Schema validator (config schema)
  libgsasl-dev     # GNU SASL: POP3 AUTH mechanisms (PLAIN, LOGIN, CRAM-MD5, SCRAM-*)
  dovecot-core dovecot-pop3d openssl ca-certificates
  socat  # tests/fixtures/popa3d.sh: serves popa3d (an inetd-style server) on loopback, and TLS
  # GNU Mailutils pop3d, a third real POP3 server (tests/fixtures/mailutils.sh runs it in inetd
  # mode under socat with a private config). Installs beside dovecot-pop3d; its systemd unit
  # (`pop3d --daemon`) is kept from starting by policy-rc.d below and nothing of ours uses it.
  mailutils-pop3d
  python3 procps
  # Single-node Ceph (mon + memstore OSD + RGW) for the S3 plugin's tests
  # (scripts/ceph-rgw.sh); ceph-common brings the ceph/ceph-authtool/monmaptool/
  # radosgw-admin CLIs. ~62 packages, ~67 MB download, ~270 MB on disk.
  ceph-mon ceph-osd radosgw ceph-common
)

# popa3d, a second real POP3 server for the integration tests (tests/fixtures/popa3d.sh). Its
# package conflicts with dovecot-pop3d (both provide pop3-server), so it is unpacked here,
# never installed: the fixture runs this binary itself.
popa3d_dir=/opt/popvault-tests/popa3d

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ -x "$popa3d_dir/usr/sbin/popa3d" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (or $popa3d_dir);" \
    "run as root (or install them yourself)" >&2
  exit 1
fi
unpack_popa3d() {
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq popa3d 2>/dev/null) || { apt-get update -qq && (cd "$tmp" && apt-get download -qq popa3d); }
  mkdir -p "$popa3d_dir"
  dpkg -x "$tmp"/popa3d_*.deb "$popa3d_dir"
  rm -rf "$tmp"
}
if [ ${#missing[@]} -eq 0 ]; then
  unpack_popa3d
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the distribution's services (dovecot; mailutils-pop3d; ceph-*, lvm2,
# smartmontools pulled in by Ceph) from starting: the tests and the demo run their own private instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -x "$popa3d_dir/usr/sbin/popa3d" ] || unpack_popa3d
# mailutils-pop3d's package enables its systemd unit (`pop3d --daemon`: port 110 on every
# address) for the next boot; policy-rc.d only kept it from starting now. Nothing of ours uses
# it (tests/fixtures/mailutils.sh runs pop3d in inetd mode itself), so switch it off for good.
if [[ " ${missing[*]} " == *" mailutils-pop3d "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --quiet mailutils-pop3d.service || echo "install-deps: could not disable" \
    "mailutils-pop3d.service; run: systemctl disable --now mailutils-pop3d.service" >&2
fi
