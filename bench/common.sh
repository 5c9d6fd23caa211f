# Sourced by the bench scripts (bench/*/run.sh): the environment PyTorch runs fastest in here, and
# the Release build with the benchmarks.

# bench_env THREADS: PyTorch's fastest BLAS here is OpenBLAS (OpenMP build); Debian's alternatives
# already point libblas.so.3 there on this machine, the path makes it so whatever they say. No
# OPENBLAS_CORETYPE: SkylakeX kills the process with SIGILL on this AVX2-only EPYC, and the
# autodetected kernels (Haswell) are as fast as a forced Zen.
bench_env() {
  export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  unset OPENBLAS_CORETYPE
  export OMP_NUM_THREADS=$1
}

# bench_build ROOT BUILD TARGET...: configures BUILD (Ninja, Release, benchmarks on, no tests)
# when it has no cache yet, then builds the targets.
bench_build() {
  local root=$1 build=$2
  shift 2
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAJAL_BUILD_BENCH=ON \
          -DCAJAL_BUILD_TESTS=OFF >&2
  fi
  cmake --build "$build" -j2 --target "$@" >&2
}
