#!/bin/sh
# Installs an edge node: the pel binary, /etc/pel/edge.yaml (examples/edge/edge.yaml) and
# /etc/pel/edge.env (each kept when it exists and differs: the new one is put beside it as
# .new), the pel user and the pel-edge.service unit, then enables and starts the unit.
# Run as root from a checkout with a built pel:
#   deployments/edge/install.sh --binary build-edge/framework/cli/pel
# Options:
#   --binary PATH   the pel binary to install (default: build/framework/cli/pel)
#   --root DIR      install under DIR instead of / and touch neither users nor systemd
#                   (to look at the result, or to build an image)
#   --no-start      install and enable, but do not start (e.g. edit edge.env first)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary="$repo/build/framework/cli/pel"
root=""
start=yes

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -x "$binary" ] || { echo "install.sh: no pel binary at $binary (build it, or give --binary)" >&2; exit 2; }
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (or with --root DIR to install into a folder)" >&2
  exit 2
fi

# The pipeline must be valid before anything is replaced.
"$binary" lint "$repo/examples/edge/edge.yaml" >/dev/null

install -d -m 0755 "$root/usr/local/bin" "$root/etc/pel" "$root/etc/systemd/system" \
  "$root/usr/local/share/doc/pel/edge"
install -m 0755 "$binary" "$root/usr/local/bin/pel"
# Configuration files are the operator's once installed: an edited one is kept.
install_config() {  # install_config SOURCE TARGET MODE
  if [ -e "$2" ] && ! cmp -s "$1" "$2"; then
    install -m "$3" "$1" "$2.new"
    echo "keeping $2 (it differs from the new one, installed as $2.new)"
  else
    install -m "$3" "$1" "$2"
  fi
}
install_config "$repo/examples/edge/edge.yaml" "$root/etc/pel/edge.yaml" 0644
install_config "$here/edge.env" "$root/etc/pel/edge.env" 0640
install -m 0644 "$here/pel-edge.service" "$root/etc/systemd/system/pel-edge.service"
install -m 0644 "$here/README.md" "$root/usr/local/share/doc/pel/edge/README.md"

if [ -n "$root" ]; then
  echo "installed under $root (no user created, systemd not told)"
  exit 0
fi

# A system user without a shell or a home of its own: /var/lib/pel is made by systemd
# (StateDirectory=pel) at each start, owned by pel.
if ! id -u pel >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/pel --no-create-home \
    --shell /usr/sbin/nologin --comment "PEL stream processing" pel
fi
chgrp pel /etc/pel/edge.env

systemctl daemon-reload
if [ "$start" = yes ]; then
  systemctl enable --now pel-edge.service
  systemctl --no-pager status pel-edge.service || true
else
  systemctl enable pel-edge.service
  echo "enabled; start it with: systemctl start pel-edge"
fi
