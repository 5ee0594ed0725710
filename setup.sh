#!/usr/bin/env bash
# Set up resdsl in ./.venv, a virtual environment that sees no Python package installed
# elsewhere: graphviz's `dot` (a system package, for `resdsl render`), Python's venv
# module and, on Debian and Ubuntu, Fashion-MNIST (dataset-fashion-mnist, for the
# examples and `--data fashion-mnist`) when they are missing, then resdsl with what its
# tests need, at the versions the suite last passed with (constraints.txt). Running it
# again only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

system_install() {  # DEBIAN_PACKAGE BREW_FORMULA
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "$1" >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install "$2"
  else
    echo "setup.sh: please install $1 with your system's package manager" >&2
    return 1
  fi
}

command -v dot >/dev/null 2>&1 || system_install graphviz graphviz ||
  echo "setup.sh: without graphviz, resdsl render writes .dot files only" >&2
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  { command -v apt-get >/dev/null 2>&1 && system_install dataset-fashion-mnist -; } ||
    echo "setup.sh: Fashion-MNIST is Debian's dataset-fashion-mnist package; without it," \
         "give --data fashion-mnist:DIR a folder of its idx files (one test skips)" >&2
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv 2>/dev/null || { system_install python3-venv python && python3 -m venv .venv; }
fi
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
