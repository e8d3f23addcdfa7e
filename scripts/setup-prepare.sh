#!/usr/bin/env bash
# Installs what `nerfad prepare VIDEO` needs beyond `npm ci`: ffmpeg and ffprobe (Debian's ffmpeg package, about
# 30 s). As root it installs them; otherwise it prints the command to run. `--check` only reports (exit 1 if missing).
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then echo "ffmpeg is installed"; exit 0; fi
if [ "${1:-}" = "--check" ]; then echo "ffmpeg is missing" >&2; exit 1; fi
if [ "$(id -u)" != 0 ]; then
  echo "ffmpeg is missing; run as root: apt-get update && apt-get install -y ffmpeg" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
ffmpeg -version | head -1
