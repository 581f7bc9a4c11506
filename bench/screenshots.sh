#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/screenshots/*.png) with the browser tests: each page is
# saved full-page at 1400 px wide by tests/test_browser.py when VAE_SCREENSHOTS names a folder.
# Run from anywhere, with the project's environment active; needs Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/screenshots
VAE_SCREENSHOTS=docs/screenshots python -m pytest tests/test_browser.py tests/test_explorer_browser.py \
    tests/test_your_input_browser.py tests/test_reproduce_browser.py tests/test_estimator_lab_browser.py \
    -m browser -q -p no:cacheprovider "$@"
ls -l docs/screenshots/*.png
