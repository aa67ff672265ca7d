#!/usr/bin/env bash
# The review console's browser test (test/console) drives Debian's Chromium through playwright-core.
# Install it when missing, so `npm test` works on a fresh Debian machine (it runs as `pretest`).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Chromium is missing and apt-get is not available: install chromium (the browser test needs /usr/bin/chromium)." >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
echo "Installing Debian's chromium for the browser test..." >&2
"${apt_get[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
