#!/usr/bin/env bash
# Makes a fresh clone ready to run: node modules, then a WebGPU adapter (on Linux without a GPU: Mesa lavapipe,
# installed by scripts/setup-system.sh when this user is root, otherwise the exact command is printed).
# Usage: bash scripts/setup.sh [--quiet]
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { if [ "$quiet" = 0 ]; then echo "$@"; fi; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if adapter=$(node scripts/check-adapter.mjs 2>/dev/null); then
  say "setup: WebGPU adapter: $adapter"
  exit 0
fi

echo "setup: no WebGPU adapter found; installing the Vulkan CPU driver (Mesa lavapipe)"
bash scripts/setup-system.sh
if adapter=$(node scripts/check-adapter.mjs); then
  echo "setup: WebGPU adapter: $adapter"
else
  echo "setup: still no WebGPU adapter after installing lavapipe; see the messages above." >&2
  exit 1
fi
