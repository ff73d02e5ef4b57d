#!/usr/bin/env bash
# GPU check of the training engine on a machine with a real GPU and no Node.js.
#
#   bash bench/gpu-check.sh --prepare   # here (Node 24, npm deps installed): builds bench/gpu/.build/ (~45 MB):
#                                       # the check bundled into one ESM file, onnxruntime-node's JS + binding,
#                                       # libonnxruntime and Node's binary xz-compressed, the Vulkan loader .debs
#   bash bench/gpu-check.sh             # there, from the repo root with bench/gpu/.build carried along
#   bash bench/gpu-check.sh --small     # smoke test at test sizes (e.g. here, under the software Vulkan
#                                       # driver: set -a; . .cache/vulkan/vulkan.env; set +a)
#   extra arguments go to bench/gpu/check.ts (--shapes, --modes, --equality, --python, --budget-s)
#
# Prints one JSON object (also written to $OUT/gpu-check.json when OUT is set): the GPU, float32 matmul
# throughput (WebGPU, and cuBLAS through PyTorch when a Python with torch+CUDA is found), node placement
# of the policy's graphs on WebGPU, CPU vs WebGPU equality of DPO steps (full, LoRA), greedy decoding and
# a scatter-add with repeated rows, then per shape (10m, 50m, Qwen2.5-0.5B) the policy's training step and
# batched decoding on each GPU provider (WebGPU; CUDA when its libraries load) with step time, tokens/s,
# bytes moved per step and per token, next to PyTorch eager CUDA on the same folder, and onnxruntime's
# profile of the WebGPU step (GPU and host-dispatch time per op type). The check stops measuring after --budget-s (420 s
# by default) and reports the rest as skipped: one run fits in ~8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=bench/gpu/.build
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64

compress() {
  local src=$1 dst=$2
  if [ -f "$dst" ] && [ "$(cat "$dst.sha256" 2>/dev/null)" = "$(sha256sum <"$src")" ]; then return; fi
  xz -9 -T2 -c "$src" >"$dst"
  sha256sum <"$src" >"$dst.sha256"
}

prepare() {
  local node_bin
  node_bin=$(command -v node)
  "$node_bin" -e 'if (+process.versions.node.split(".")[0] < 22 || process.arch !== "x64") process.exit(1)' ||
    { echo "need Node >= 22 on x64 in PATH to prepare" >&2; exit 1; }
  rm -rf "$BUILD/pkg" "$BUILD/debs"
  mkdir -p "$BUILD/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux/x64" "$BUILD/pkg/node_modules/onnxruntime-common" "$BUILD/debs"
  node_modules/.bin/esbuild bench/gpu/check.ts --bundle --platform=node --format=esm --target=node22 \
    --external:onnxruntime-node --outfile="$BUILD/pkg/check.mjs" --log-level=warning
  cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist "$BUILD/pkg/node_modules/onnxruntime-node/"
  cp "$ORT_BIN/onnxruntime_binding.node" "$BUILD/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
  cp -r node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist "$BUILD/pkg/node_modules/onnxruntime-common/"
  # PyTorch's side (run when the machine has torch): the script next to check.mjs, its model in ../scripts.
  cp bench/model-torch.py "$BUILD/pkg/"
  mkdir -p "$BUILD/scripts" && cp scripts/make-model-fixtures.py "$BUILD/scripts/"
  # Compressing takes minutes: keep earlier archives of the same binaries.
  compress "$ORT_BIN/libonnxruntime.so.1" "$BUILD/libonnxruntime.so.1.xz"
  compress "$node_bin" "$BUILD/node.xz"
  # The Vulkan loader for the GPU machine (its NVIDIA driver brings the ICD), from Debian's archive.
  local lists=/tmp/sso-gpu-apt-lists
  local apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
  mkdir -p "$lists/partial"
  apt-get "${apt_opts[@]}" update
  (cd "$BUILD/debs" && apt-get "${apt_opts[@]}" download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2)
  du -sh "$BUILD"
  echo "prepared; on the GPU machine run: bash bench/gpu-check.sh   (carry: bench/gpu/.build)"
}

# xz may be missing on the GPU machine's image; Python's lzma reads the same format.
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

has_vulkan_loader() {
  ldconfig -p | grep -q 'libvulkan.so.1' && return 0
  local d
  for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libvulkan.so.1" ] && return 0; done
  return 1
}

run_check() {
  export PATH="$PATH:/usr/sbin:/sbin"
  [ -f "$BUILD/node.xz" ] || { echo "missing $BUILD: run 'bash bench/gpu-check.sh --prepare' first" >&2; exit 1; }
  local work=/tmp/sso-gpu-check
  rm -rf "$work"
  mkdir -p "$work"
  cp -r "$BUILD/pkg" "$BUILD/scripts" "$work/"
  unxz_to "$BUILD/node.xz" "$work/node"
  chmod +x "$work/node"
  unxz_to "$BUILD/libonnxruntime.so.1.xz" "$work/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"
  if ! has_vulkan_loader; then
    for f in "$BUILD"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
  local out="${OUT:-$work}/gpu-check.json" rc=0
  # The check rewrites $out after every measurement: a run cut short still leaves what it measured.
  GPU_CHECK_OUT="$out" MALLOC_MMAP_THRESHOLD_=4294967295 MALLOC_TRIM_THRESHOLD_=4294967295 \
    timeout "${GPU_CHECK_TIMEOUT_S:-540}" "$work/node" "$work/pkg/check.mjs" "$@" >/dev/null || rc=$?
  [ "$rc" = 0 ] || echo "the check stopped early (exit $rc); results so far:" >&2
  cat "$out"
  return "$rc"
}

if [ "${1:-}" = --prepare ]; then prepare; else run_check "$@"; fi
