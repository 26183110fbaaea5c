#!/bin/sh
# Install the Debian packages named on the command line that are not installed yet.
# Not root: print the command instead of running it.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$missing"
    echo "run as root:  $cmd"
    exit 1
fi
echo "installing:$missing"
DEBIAN_FRONTEND=noninteractive $cmd >/dev/null || { apt-get update -o DPkg::Lock::Timeout=600 >/dev/null && DEBIAN_FRONTEND=noninteractive $cmd >/dev/null; }
