#!/usr/bin/env bash
# The device check of issue 16, ready to run on any machine with a GPU (Vulkan, Metal, DX12):
# builds fusebox, then measures
#   1. the device's copy bandwidth, and fused add1/poly/gauss/two/sumsq/softmax in float32 and
#      float64 from 1e6 to 1e9 elements, resident and streamed from the host
#      (examples/gpu_check.rs; sizes the device cannot hold are skipped);
#   2. the CPU-GPU agreement table (src/gpu/agreement.rs);
#   3. Auto's regret (`fusebox bench --placement`).
# Writes $OUT/gpu_check.json, $OUT/table.txt, $OUT/agreement.txt, $OUT/placement.txt and prints
# the tables. Each phase has its own time limit; the measuring phases take at most 8 minutes
# (240 + 90 + 150 s).
#
#   benches/gpu_check.sh                       # release build, sizes 1e6..1e9
#   SIZES=1e4,1e5 PROFILE=dev benches/gpu_check.sh   # a quick run (lavapipe)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu_check}
SIZES=${SIZES:-1e6,1e7,1e8,1e9}
PROFILE=${PROFILE:-release}
PLACEMENT_SIZES=${PLACEMENT_SIZES:-1e4,1e5,1e6,1e7}
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
mkdir -p "$OUT"
export FUSEBOX_REQUIRE_GPU=1

echo "== build ($PROFILE)"
cargo build --profile "$PROFILE" --bin fusebox --example gpu_check || exit 1
./target/"$DIR"/fusebox devices || true

echo "== kernels (budget 200 s)"
timeout 240 ./target/"$DIR"/examples/gpu_check --sizes "$SIZES" --budget-s 200 \
    >"$OUT/gpu_check.json" 2>"$OUT/table.txt"
echo "exit $?" >>"$OUT/table.txt"
grep -v XDG_RUNTIME "$OUT/table.txt"

echo "== Auto's regret (placement, 90 s)"
timeout 90 ./target/"$DIR"/fusebox bench --placement --device gpu:0 \
    --sizes "$PLACEMENT_SIZES" --budget-ms 300 2>/dev/null | tee "$OUT/placement.txt"

echo "== CPU-GPU agreement (150 s after its build)"
cargo test --profile "$PROFILE" --lib --no-run -q 2>/dev/null
timeout 150 cargo test --profile "$PROFILE" --lib gpu::agreement::cpu_gpu_agreement \
    -- --nocapture >"$OUT/agreement.txt" 2>&1
echo "exit $?"
grep -E '^\|' "$OUT/agreement.txt" | head -n 50

echo "== wrote $OUT/{gpu_check.json,table.txt,placement.txt,agreement.txt}"
