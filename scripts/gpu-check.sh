#!/usr/bin/env bash
# The one-burst device check of the native backend (CUDA IO binding, CUDA graphs, goldens, latency,
# profiles, the PyTorch eager baseline, and the exported .onnx on Python's onnxruntime).
#
# On a CUDA machine with ONNX Runtime's CUDA provider next to its core library (VITGRAPH_ORT_LIB)
# and the CUDA / cuDNN libraries on LD_LIBRARY_PATH:
#     bash scripts/gpu-check.sh                    # = --device cuda; more flags go to gpu-check.js
# Without a GPU, the same harness runs on CPU:
#     bash scripts/gpu-check.sh --device cpu
#
# It builds nothing. It needs, built beforehand:
#   dist/                                   npm run build
#   src/runtime/native/build/               npm run build:native (or prebuilds/linux-x64-glibc/)
#   node_modules/{onnx-proto,protobufjs,@protobufjs,long}
# onnxruntime-node and sharp are not needed: nothing on this path loads them.
# On CUDA it also runs, when present: a serialized profile pass (CUDA_LAUNCH_BLOCKING=1), the
# PyTorch eager baseline (python3 with torch + transformers) and the Python onnxruntime check.
# Writes gpu-check.{json,md,log} (+ serialized/, torch-baseline.json, python-ort.json) into $OUT
# (default ./gpu-check-out). Exit: 0 passed, 1 a check failed, 2 cannot start, 3 CUDA unusable,
# 124 timed out.
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
for f in dist/scripts/gpu-check.js dist/src/runtime/native.js dist/cli/main.js \
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
cuda=0
{ [ "$device_given" = 0 ] || printf '%s\n' "$@" | grep -qx cuda; } && cuda=1
WORK=${GPU_CHECK_WORK:-$(mktemp -d)}
PY=python3
[ -x /opt/torch/.venv/bin/python ] && PY=/opt/torch/.venv/bin/python

# 1. Goldens, latency and host-side profiles; the attention kernel ORT picks per node is logged.
ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1 timeout "${GPU_CHECK_TIMEOUT_S:-330}" \
  node dist/scripts/gpu-check.js --out "$OUT" --work-dir "$WORK" --profile "${PROFILE_CASES:-^2b (448|2048)² fp16 cuda-form\$}" "${args[@]}"
rc=$?

if [ "$cuda" = 1 ]; then
  # 2. The same graphs profiled with every kernel launch waited for: GPU time per node.
  echo "== serialized profile (CUDA_LAUNCH_BLOCKING=1)"
  CUDA_LAUNCH_BLOCKING=1 timeout "${PROFILE_TIMEOUT_S:-60}" node dist/scripts/gpu-check.js --device cuda --out "$OUT/serialized" \
    --work-dir "$WORK" --only "${PROFILE_CASES:-^2b (448|2048)² fp16 cuda-form\$}" --profile --runs 3 --warmup 1 || echo "serialized profile: exit $?"

  # 3. PyTorch eager of the upstream module on the same card (skips itself without transformers/CUDA).
  echo "== PyTorch eager baseline (transformers Qwen3VLVisionModel, 2B shape)"
  timeout "${TORCH_CHECK_TIMEOUT_S:-150}" "$PY" scripts/gpu-check-torch.py "${TORCH_SIZES:-448,1024,2048}" | tee "$OUT/torch-baseline.json"

  # 4. The exported dynamic graph on Python's onnxruntime, against the float64 reference.
  echo "== the exported dynamic .onnx on Python onnxruntime"
  node --input-type=module -e "const { exportModel } = await import('./dist/index.js'); await exportModel({ model: 'fixtures/encoder/tiny', out: process.argv[1], overwrite: true });" "$WORK/tiny-dynamic.onnx" &&
    timeout 60 "$PY" scripts/gpu-check-python-ort.py "$WORK/tiny-dynamic.onnx" fixtures/encoder/tiny/io.safetensors | tee "$OUT/python-ort.json"
fi
rm -f "$OUT/serialized/gpu-check.json" # the Markdown reports travel back (8 files at most)
[ -n "${GPU_CHECK_WORK:-}" ] || rm -rf "$WORK"
echo "== exit $rc (0 passed, 1 a check failed, 2 cannot start, 3 CUDA unusable, 124 timed out)"
exit "$rc"
