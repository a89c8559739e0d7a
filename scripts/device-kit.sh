#!/usr/bin/env bash
# Builds .devicekit/ for a bare GPU machine, as ../shared/device/make-kit.sh does, but small
# enough to travel with the tree (64 MiB): node_modules without other platforms' Dawn builds,
# TypeScript, source maps, type declarations and tfjs's unused bundle variants; plus the
# reference fixture (../shared does not travel). Then, on the device:
#   source .devicekit/env.sh && bash bench/device-run.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel)
kit="$root/.devicekit"
shared="$root/../shared"
grep -qx '/.devicekit/' "$root/.git/info/exclude" 2>/dev/null || echo '/.devicekit/' >> "$root/.git/info/exclude"
rm -rf "$kit"; mkdir -p "$kit/debs" "$kit/fixtures"

xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$kit/node.xz"

o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
apt-get $o update -qq >/dev/null
# The NVIDIA Vulkan ICD (libGLX_nvidia) needs the GL vendor-neutral dispatch libraries too.
(cd "$kit/debs" && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)

# tfjs runs in Node from its single *.node.js bundles; the per-module files and tests stay here.
(cd "$root" && { find node_modules \( -path 'node_modules/webgpu/dist/darwin-*' -o -path 'node_modules/webgpu/dist/win32-*' \
    -o -path 'node_modules/webgpu/dist/linux-arm64' -o -path 'node_modules/.cache' -o -path 'node_modules/typescript' \
    -o -path 'node_modules/@tensorflow/*/src' \) -prune -o \( -type f -o -type l \) \
    ! -name '*.map' ! -name '*.d.ts' -print \
  | grep -v -E '^node_modules/@tensorflow/[^/]+/dist/' ; ls "$root"/node_modules/@tensorflow/*/dist/*.node.js | sed "s#^$root/##"; } \
  | tar -cf - -T - | xz -T0 -6 > "$kit/node_modules.tar.xz")

cp "$shared/device/env.sh" "$kit/env.sh"
cp -r "$shared/fixtures/tiny-gpt2" "$kit/fixtures/"
du -sh "$kit"/* | sed 's/^/kit: /'
echo "kit total: $(du -sh "$kit" | cut -f1) (the tree and everything carried must stay under 64 MiB)"
