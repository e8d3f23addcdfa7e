#!/usr/bin/env bash
# Installs what `nerfad synth` needs beyond `npm ci`: Festival (text-to-speech with phoneme timings, run as a
# separate program). Only the synth command needs it; `npm test` never does (its TTS tests skip without it).
set -euo pipefail
if command -v festival >/dev/null 2>&1; then echo "festival is installed"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "festival is missing; run as root: apt-get update && apt-get install -y festival" >&2; exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq festival
festival --version
