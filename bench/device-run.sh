#!/usr/bin/env bash
# The GPU pass, correctness first, then timings. On a bare GPU machine, from the project root,
# with the kit built here by scripts/device-kit.sh and carried along:
#   source .devicekit/env.sh && bash bench/device-run.sh
# Logs and results go to $OUT (default ./device-out). About 4 minutes on an H200: the tests
# (GPU-class matmuls go through the tiled kernel; every tile, layout and K split is checked
# against float64), the golden fixture, then the bench: measured FMA peak and copy bandwidth,
# matmul at GPT-2 shapes (the chosen kernel, the previous register-blocked one, every tile and
# split, and TensorFlow.js on the same adapter), attention and norms (kernel time with
# timestamps), the subgroups/shader-f16 variants against their fallbacks, encode and steps; then
# a profiled GPT-2 prompt step (bench/trace-step.ts): its trace, and each kernel's share of the peaks.
set -uo pipefail
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
# ../shared does not travel: the fixture comes inside the kit.
if [ ! -d ../shared/fixtures/tiny-gpt2 ]; then
  mkdir -p ../shared/fixtures && cp -r .devicekit/fixtures/tiny-gpt2 ../shared/fixtures/
fi
# env.sh unpacks the kit's loader packages only where libvulkan is missing; the NVIDIA ICD also
# needs the GL dispatch libraries, which a machine may lack even when it has libvulkan.
if ! ldconfig -p | grep -q libGLX.so.0; then
  for f in .devicekit/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
node scripts/embed-kernels.mjs
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

echo "== correctness: kernel, engine, model and training tests on the GPU"
timeout 150 node node_modules/vitest/vitest.mjs run test/ops test/engine test/gpu test/gpt2/model.test.ts test/prompt > "$out/tests.log" 2>&1
echo "vitest exit $?"
grep -E "✓ test/|× |FAIL|Test Files|Tests  |Duration" "$out/tests.log" | sed 's/\x1b\[[0-9;]*m//g' | head -60

echo "== golden fixture on the GPU"
timeout 120 node --import tsx src/cli/golden.ts ../shared/fixtures/tiny-gpt2 | tee "$out/golden.json"

echo "== timings"
timeout "${BENCH_TIMEOUT:-300}" node --import tsx bench/run.ts ${BENCH_ARGS:-} 2>&1 | tee "$out/bench.log" | grep -v "^Warning"
find bench/results -name "*.json" -newer "$out/gpu.txt" -exec cp {} "$out/" \;
timeout 60 node --import tsx bench/multitask.ts --json 2>/dev/null | tee "$out/multitask.json"

echo "== profile of one GPT-2 prompt + head step: per-kernel GPU times and their share of the measured peaks"
timeout 180 node --import tsx bench/trace-step.ts --peak --overhead --out "$out" 2>&1 | grep -v "^Warning" | tee "$out/trace-step.log"
true
