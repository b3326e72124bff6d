#!/usr/bin/env bash
# The one-burst device check of the native backend (CUDA IO binding, CUDA graphs, goldens, latency).
#
# On the lent GPU machine, after the kit is unpacked and `source /opt/vgkit/env.sh` has put node on
# PATH, the CUDA 13 / cuDNN libraries on LD_LIBRARY_PATH and VITGRAPH_ORT_LIB on the kit's ORT 1.29
# core library (next to its CUDA provider):
#     bash scripts/gpu-check.sh                    # = --device cuda; more flags go to gpu-check.js
# Here, without a GPU, the same harness runs on CPU:
#     bash scripts/gpu-check.sh --device cpu
#
# It builds nothing. It needs, built here and carried:
#   dist/                                   npm run build
#   src/runtime/native/build/               npm run build:native   (gitignored: carry it explicitly)
#   node_modules/{onnx-proto,protobufjs,@protobufjs,long}   (onnxruntime-node is not needed on CUDA)
# plus whatever the case source module (dist/scripts/gpu-check.cases.js) imports.
# Writes $OUT/gpu-check.json, $OUT/gpu-check.md and $OUT/gpu-check.log (OUT defaults to ./gpu-check-out).
# Exit: 0 passed, 1 a check failed, 2 cannot start, 3 CUDA unusable, 124 timed out.
set -uo pipefail
for a in "$@"; do
  if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then
    # The comment block above is the help: print it without the leading "# ", run nothing.
    sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | sed '$d' | sed -E 's/^# ?//'
    exit 0
  fi
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1

echo "== vitgraph gpu-check $(date -u +%FT%TZ)"
echo "node: $(command -v node || echo MISSING) $(node --version 2>/dev/null)"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not available"
echo "VITGRAPH_ORT_LIB=${VITGRAPH_ORT_LIB:-(unset: the onnxruntime-node library)}"

missing=0
[ -e src/runtime/native/build/Release/vitgraph_native.node ] || [ -e prebuilds/linux-x64-glibc/vitgraph_native.node ] ||
  { echo "MISSING: the native addon (src/runtime/native/build/Release or prebuilds/linux-x64-glibc)"; missing=1; }
for f in dist/scripts/gpu-check.js dist/src/runtime/native/index.js \
  node_modules/onnx-proto/package.json node_modules/protobufjs/package.json; do
  [ -e "$f" ] || { echo "MISSING: $f"; missing=1; }
done
if [ "$missing" != 0 ]; then
  echo "cannot start: run npm run build and npm run build:native, and carry dist, src/runtime/native/build and the node_modules above"
  exit 2
fi

if [ -n "${VITGRAPH_ORT_LIB:-}" ]; then
  provider="$(dirname "$VITGRAPH_ORT_LIB")/libonnxruntime_providers_cuda.so"
  if [ -f "$provider" ]; then
    echo "libraries the CUDA provider cannot resolve:"
    ldd "$provider" | grep "not found" || echo "  none"
  else
    echo "no CUDA provider at $provider"
  fi
fi

args=("$@")
device_given=0
for a in "$@"; do [ "$a" = "--device" ] && device_given=1; done
[ "$device_given" = 1 ] || args=(--device cuda "${args[@]}")

timeout "${GPU_CHECK_TIMEOUT_S:-280}" node dist/scripts/gpu-check.js --out "$OUT" "${args[@]}"
rc=$?

# PyTorch eager of the upstream module on the same card (skips itself without transformers/CUDA).
if [ "$device_given" = 0 ] || printf '%s\n' "$@" | grep -qx cuda; then
  echo "== PyTorch eager baseline (transformers Qwen3VLVisionModel, 2B shape)"
  timeout "${TORCH_CHECK_TIMEOUT_S:-150}" python3 scripts/gpu-check-torch.py "${TORCH_SIZES:-224,448,1024,2048}" | tee "$OUT/torch-baseline.json"
fi
echo "== exit $rc (0 passed, 1 a check failed, 2 cannot start, 3 CUDA unusable, 124 timed out)"
exit "$rc"
