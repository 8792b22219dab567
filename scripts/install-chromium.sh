#!/usr/bin/env bash
# Makes sure Debian's Chromium is there for the operator console's browser test
# (internal/console drives it headless through the DevTools protocol).
#
# Chromium comes from the distribution's packages, not from a download: it is installed
# with apt-get when it is missing and this runs as root on a Debian-like system. Anywhere
# else it says what to install and exits 0, so the rest of `make test` still runs; the
# browser test then fails, naming the package, and never skips.
#
# Usage: scripts/install-chromium.sh     # prints the binary's path on stdout when found
set -euo pipefail

find_chromium() {
	command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

bin=$(find_chromium)
if [ -z "$bin" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing Debian's chromium package for the console's browser test" >&2
		apt-get update -qq >&2 && apt-get install -y -qq chromium >/dev/null
		bin=$(find_chromium)
	fi
fi
if [ -z "$bin" ]; then
	echo "chromium is not installed: the console's browser test will fail." >&2
	echo "Install it with: sudo apt-get install chromium   (Debian/Ubuntu)" >&2
	exit 0
fi
echo "$bin"
