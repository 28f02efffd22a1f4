#!/usr/bin/env bash
# Build `sbir` with the CUDA backend (`--features cuda`) on a machine without a GPU or a
# system CUDA toolkit: the compiler, headers and libraries come from NVIDIA's PyPI wheels,
# installed into .tools/cuda. The binary links the driver (libcuda.so.1) by name; at run time
# the GPU machine's driver provides it, here a link-time stub stands in, as the toolkit's own
# lib64/stubs/libcuda.so does.
#
# Usage: scripts/build-cuda.sh            # release build into target/cuda/release/sbir
#        CUDA_COMPUTE_CAP=80 scripts/build-cuda.sh   # another GPU (default 75: Kaggle's T4)
# Not part of `make test`: the CUDA kernels take long to compile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools/cuda
# Only the CUDA 13 wheels carry the nvcc driver itself (the -cu12 ones ship ptxas alone), with
# its headers (crt) and device compiler (nvvm) in wheels of their own;
# CUDA 13 still targets Turing (sm_75) and needs an R580 or newer driver at run time.
wheels=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-nvvm==13.0.88"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-nvrtc==13.0.88"
  "nvidia-cuda-cccl==13.0.85"
  "nvidia-cublas==13.0.2.14"
  "nvidia-curand==10.4.5.25"
)
stamp="$tools/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${wheels[*]}" ]; then
  echo "installing the CUDA toolkit wheels into $tools" >&2
  rm -rf "$tools"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$tools/site" "${wheels[@]}"
  cu="$tools/site/nvidia/cu13"
  # The wheels ship versioned sonames only; the linker wants the plain names.
  for lib in cudart cublas cublasLt nvrtc curand; do
    so=$(ls "$cu/lib/lib$lib.so."* | sort | head -1)
    ln -sf "$so" "$cu/lib/lib$lib.so"
  done
  # Link-time stand-in for the driver: every cu* entry point cudarc declares, soname
  # libcuda.so.1, each returning CUDA_ERROR_NO_DEVICE (100) should it ever be loaded.
  cudarc=$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))')
  mkdir -p "$tools/stubs"
  grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$(dirname "$cudarc")/src/driver/sys/mod.rs" |
    sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/int \1(void) { return 100; }/' | sort -u > "$tools/stubs/libcuda.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tools/stubs/libcuda.so" "$tools/stubs/libcuda.c"
  echo "${wheels[*]}" > "$stamp"
fi

cu="$tools/site/nvidia/cu13"
export CUDA_HOME="$cu" CUDA_PATH="$cu" NVCC="$cu/bin/nvcc"
export PATH="$cu/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-75}"
export LIBRARY_PATH="$cu/lib:$tools/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$cu/lib -L native=$tools/stubs"
nvcc --version | tail -2 >&2
start=$(date +%s)
cargo build --release --features cuda --target-dir target/cuda --bin sbir
echo "built target/cuda/release/sbir with CUDA (compute capability $CUDA_COMPUTE_CAP) in $(( $(date +%s) - start )) s" >&2
echo "run it where the NVIDIA driver is installed: sbir embed --device cuda ..." >&2
