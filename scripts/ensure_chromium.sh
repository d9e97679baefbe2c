#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (downloading a browser
# build does not work on machines without a general network). Install it when missing
# and when we may; otherwise the browser tests skip with a message saying why.
set -u
# fonts-noto-cjk: without it Japanese renders as empty boxes in the tests' screenshots.
if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
    || echo "Could not install chromium; browser tests will be skipped."
else
  echo "chromium is not installed and this user cannot install it; browser tests will be skipped."
fi
exit 0
