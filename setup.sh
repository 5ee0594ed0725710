#!/usr/bin/env bash
# Install resdsl and what its tests need: graphviz's `dot` (a system package, for
# `resdsl render`) when it is missing, then the Python packages.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq graphviz >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install graphviz
  else
    echo "setup.sh: install graphviz (https://graphviz.org/download/) for resdsl render" >&2
  fi
fi

python3 -m pip install -q -e '.[test]'
