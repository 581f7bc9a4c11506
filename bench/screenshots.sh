#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/screenshots/*.png) with the browser tests: each page is
# saved full-page at 1400 px wide by the browser tests (tests/browser/) when VAE_SCREENSHOTS names a folder.
# Run from anywhere, with the project's environment active; needs Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/screenshots
VAE_SCREENSHOTS=docs/screenshots python -m pytest tests/browser/test_pages.py tests/browser/test_explorer.py \
    tests/browser/test_your_input.py tests/browser/test_anatomy.py tests/browser/test_reproduce.py \
    tests/browser/test_estimator_lab.py tests/browser/test_live_map.py tests/browser/test_lab.py \
    -m browser -q -p no:cacheprovider "$@"
ls -l docs/screenshots/*.png
