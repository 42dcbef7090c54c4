#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment, building it once per machine kind.
#
# llama-cpp-python ships as an sdist that compiles llama.cpp (minutes on 2 cores). It compiles with
# -march=native, so a wheel built on one CPU may crash on another: we keep built wheels in our own cache,
# keyed by the version, the backend and a hash of the CPU's feature flags, instead of pip's cache (which
# keys only on the sdist and would hand a native wheel to a different CPU).
#
# Usage: install-llama.sh PYTHON [cpu|cuda|auto]
set -euo pipefail

python=${1:?usage: install-llama.sh PYTHON [cpu|cuda|auto]}
backend=${2:-auto}
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}

if [ "$backend" = auto ]; then
    # CUDA only when both a GPU driver and the toolkit are present: nvcc alone (as on CPU machines with
    # the toolkit installed) would build a library that fails to find a device at run time.
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && command -v nvcc >/dev/null 2>&1; then
        backend=cuda
    else
        backend=cpu
    fi
fi

case "$backend" in
    cpu) cmake_args="${CMAKE_ARGS:-}" ;;
    cuda) cmake_args="-DGGML_CUDA=on ${CMAKE_ARGS:-}" ;;
    *) echo "install-llama.sh: backend must be cpu, cuda or auto, not '$backend'" >&2; exit 2 ;;
esac

# llama.cpp's AMX kernels crash when GCC 12 compiles them (ggml-org/llama.cpp#20824): that GCC's
# `_tile_loadconfig` tells the optimiser it reads 8 bytes of the 64-byte tile configuration, the stores
# of the tiles' shapes are dropped as dead, and `ldtilecfg` faults. Without dead-store elimination the
# shapes are stored, the kernels run, and they multiply Q4_0 weights 2.7 times as fast as AVX-512
# does (the engine then loads a Q4_0 copy of the model: docs/design/models.md). Other code built so
# measured no slower. The engine still tries AMX in a child process before it relies on it.
# (CMake takes the flags from CFLAGS and CXXFLAGS.)
compile_flags=""
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    compile_flags="-fno-tree-dse -fno-dse"
fi
# Builds with other arguments are kept apart; a plain build keeps the names it always had (no rebuild).
build_key=""
if [ -n "$cmake_args$compile_flags" ]; then
    build_key="-$(printf '%s' "$cmake_args${compile_flags:+ flags $compile_flags}" | sha256sum | cut -c1-8)"
fi

marker_dir=$("$python" -c 'import sys; print(sys.prefix)')
if "$python" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.__version__ == '$version' else 1)" 2>/dev/null \
    && [ -f "$marker_dir/.llama-backend-$backend$build_key" ]; then
    echo "llama-cpp-python $version ($backend) already installed"
    exit 0
fi

cpu_key=$( (grep -m1 '^flags' /proc/cpuinfo || uname -m) | sha256sum | cut -c1-12)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/fim-lsp/wheels
wheel_dir="$cache_root/llama-cpp-python-$version-$backend-$cpu_key$build_key-$("$python" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"

if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "Building llama-cpp-python $version for $backend (once per machine; several minutes)..."
    mkdir -p "$wheel_dir.tmp"
    CMAKE_ARGS="$cmake_args" CFLAGS="${CFLAGS:-} $compile_flags" CXXFLAGS="${CXXFLAGS:-} $compile_flags" \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$python" -m pip wheel --no-deps --no-cache-dir -w "$wheel_dir.tmp" "llama-cpp-python==$version"
    rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
fi

"$python" -m pip install --no-deps --force-reinstall "$wheel_dir"/llama_cpp_python-*.whl
rm -f "$marker_dir"/.llama-backend-*
touch "$marker_dir/.llama-backend-$backend$build_key"
echo "llama-cpp-python $version ($backend) installed from $wheel_dir"
