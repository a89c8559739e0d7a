#!/usr/bin/env bash
# Installs Mesa's lavapipe, a CPU Vulkan driver, recent enough for Dawn to admit it (Mesa 25
# is; Debian 12's Mesa 22.3 is rejected). It offers shader-f16 and subgroups, so the kernels'
# variants for those features are tested on machines without a GPU; the engine itself still
# prefers llvmpipe through GL ES on such machines (faster). Best effort: when it cannot
# install, it says why and exits 0, and those tests are skipped.
set -uo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
give_up() { echo "software-vulkan: $1; the shader-f16/subgroups variant tests will be skipped" >&2; exit 0; }

version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [ -n "$version" ] && dpkg --compare-versions "$version" ge 25 && dpkg-query -W libvulkan1 >/dev/null 2>&1; then
  exit 0
fi
[ -r /etc/os-release ] || give_up "not a Debian-like system"
. /etc/os-release
command -v apt-get >/dev/null || give_up "no apt-get"

export DEBIAN_FRONTEND=noninteractive
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  # Debian 12 ships Mesa 22.3; its backports have Mesa 25.
  list=/etc/apt/sources.list.d/gpt2-prompt-backports.list
  [ -f "$list" ] || echo 'deb http://deb.debian.org/debian bookworm-backports main' | as_root tee "$list" >/dev/null || give_up "cannot add bookworm-backports"
  as_root apt-get update -qq || give_up "apt-get update failed"
  as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null || give_up "installing Mesa 25 from bookworm-backports failed"
else
  as_root apt-get update -qq || give_up "apt-get update failed"
  as_root apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null || give_up "installing mesa-vulkan-drivers failed"
fi
echo "software-vulkan: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
