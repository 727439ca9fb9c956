#!/usr/bin/env bash
# Installs schemathesis (PyPI) into a git-ignored venv once, and prints the path of its `st` command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly VERSION=4.32.5
readonly VENV=.tools/schemathesis
if [ ! -x "$VENV/bin/st" ] || ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
  fi
  echo "schemathesis: installing $VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
fi
echo "$PWD/$VENV/bin/st"
