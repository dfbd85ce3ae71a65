#!/usr/bin/env bash
# install-chromium.sh installs Debian's Chromium for the status page's browser
# test, when it is missing. Needs root (or sudo) and Debian's package registry.
set -euo pipefail
command -v chromium >/dev/null && exit 0
SUDO=
[[ $(id -u) -eq 0 ]] || SUDO=sudo
echo "installing Debian's chromium for the browser test" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
