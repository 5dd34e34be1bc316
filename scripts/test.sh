#!/usr/bin/env bash
# Install what the tests need and run the whole suite (README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --upgrade "pip>=23" "setuptools>=70" >/dev/null
python3 -m pip install -e '.[test]'
python3 -m pytest "$@"
