#!/usr/bin/env bash
# Installs what nerfad needs from the operating system on a Debian/Ubuntu machine without a GPU:
# the Vulkan loader and Mesa's lavapipe (Vulkan on the CPU), which Dawn (the `webgpu` package) runs on.
#
# Debian bookworm's own Mesa (22.3) is refused by Dawn ("shaderUniform*ArrayDynamicIndexing required"),
# so on bookworm the suite `bookworm-backports` is enabled beside the machine's existing Debian source;
# its URI is read from that source file, never written here.
#
# Usage: bash scripts/setup-system.sh          (as root, or with sudo available)
#        bash scripts/setup-system.sh --check  (exit 0 when nothing is missing)
set -euo pipefail

have_lavapipe() {
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || return 1
  # bookworm's 22.x lavapipe is present on some images but too old for Dawn.
  local ver
  ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo "")
  case "$ver" in 2[3-9].*|[3-9][0-9].*) return 0 ;; "") return 0 ;; *) return 1 ;; esac
}

if [ "${1:-}" = "--check" ]; then
  have_lavapipe && exit 0 || exit 1
fi

if have_lavapipe; then
  echo "setup-system: Vulkan loader and a recent lavapipe are present."
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "setup-system: lavapipe (Vulkan on the CPU) is missing and this user cannot install packages." >&2
    echo "Run as root:  bash $(cd "$(dirname "$0")" && pwd)/setup-system.sh" >&2
    exit 1
  fi
fi

codename=""
[ -r /etc/os-release ] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
export DEBIAN_FRONTEND=noninteractive

if [ "$codename" = "bookworm" ]; then
  # Find the URI of the machine's existing Debian main archive (deb822 or one-line format).
  uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    echo "setup-system: could not read the Debian archive URI from /etc/apt/sources.list(.d)." >&2
    exit 1
  fi
  list=/etc/apt/sources.list.d/nerfad-bookworm-backports.list
  if [ ! -f "$list" ]; then
    echo "deb $uri bookworm-backports main" | $SUDO tee "$list" >/dev/null
    echo "setup-system: enabled bookworm-backports from $uri"
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if have_lavapipe; then
  echo "setup-system: installed $(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers)"
else
  echo "setup-system: installation finished but lavapipe is still missing or too old." >&2
  exit 1
fi
