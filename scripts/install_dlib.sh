#!/usr/bin/env bash
# Installs dlib into the venv: the prebuilt dlib-bin wheel by default; built from source against OpenBLAS with
# BEDCHECK_DLIB=source.
#
# Why the wheel by default: the default engine (sface) and liveness (Face Mesh) use no dlib model; dlib serves
# the optional `dlib` engine and the doubtful-detection check (its HOG detector, part of dlib's own code).
# A fresh machine should reach a served demo in minutes, not wait 7 minutes for a compiler.
# Why a source build for a site that runs the dlib engine: its 128-d encoding (a ResNet on the CPU) dominates
# every face operation. Measured on this machine's 2 cores (scripts/bench_dlib.py, docs/benchmarks.md): 66 ms
# per encoding with dlib-bin (AVX, no BLAS), 15 ms with dlib built here against OpenBLAS; the same encodings to
# 1e-6. The build takes about 7 minutes once; the wheel is cached (~/.cache/bedcheck/wheels), so later venvs
# on the machine install it in seconds.
# Usage: scripts/install_dlib.sh PYTHON    (BEDCHECK_DLIB=source builds; anything else, or unset: the wheel)
set -euo pipefail
PY=${1:?usage: install_dlib.sh PYTHON}
DLIB_VERSION=20.0.1
DLIB_BIN_VERSION=20.0.1.post1

installed() { "$PY" -c "import dlib, sys; sys.exit(0 if dlib.__version__ == '$DLIB_VERSION' else 1)" 2>/dev/null; }

have_cblas() { compgen -G "/usr/include/cblas.h" >/dev/null || compgen -G "/usr/include/*/cblas.h" >/dev/null; }

use_wheel() {
    echo "install_dlib: $1; installing the dlib-bin wheel (no BLAS: encodings about 4x slower)" >&2
    "$PY" -m pip uninstall -q -y dlib 2>/dev/null || true
    "$PY" -m pip install -q "dlib-bin==$DLIB_BIN_VERSION"
}

if [ "${BEDCHECK_DLIB:-wheel}" != source ]; then
    if "$PY" -m pip show -q dlib-bin >/dev/null 2>&1 && ! "$PY" -m pip show -q dlib >/dev/null 2>&1; then
        exit 0  # already the wheel
    fi
    use_wheel "the default (BEDCHECK_DLIB=source builds dlib for the dlib engine's speed)"
    exit 0
fi
# dlib's build links OpenBLAS when it finds it; without it, it falls back to its own slower matrix code.
if ! have_cblas; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "install_dlib: installing libopenblas-dev for the dlib build" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends libopenblas-dev liblapack-dev >/dev/null \
            || echo "install_dlib: could not install OpenBLAS; dlib is built without it" >&2
    else
        echo "install_dlib: no OpenBLAS headers and not root: dlib is built without BLAS" >&2
    fi
fi
if "$PY" -m pip show -q dlib-bin >/dev/null 2>&1; then
    "$PY" -m pip uninstall -q -y dlib-bin  # both install the same `dlib` package directory
fi
if installed && "$PY" -m pip show -q dlib >/dev/null 2>&1; then
    exit 0
fi
# Our own wheel cache, keyed by what the build depends on: pip's cache keys a built wheel by its source only,
# so it would hand a wheel built with other flags, for another CPU or without BLAS to the next venv.
CXXFLAGS=${CXXFLAGS:--O3 -march=native}
if have_cblas; then blas=yes; else blas=no; fi
key=$(printf '%s\n' "$DLIB_VERSION" "$CXXFLAGS" "blas=$blas" "$("$PY" -c 'import sys; print(sys.version)')" \
      "$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)" | sha256sum | cut -c1-16)
cache=${BEDCHECK_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bedcheck/wheels}/dlib-$key
wheel=$(compgen -G "$cache/dlib-$DLIB_VERSION-*.whl" | head -1 || true)
if [ -z "$wheel" ]; then
    echo "install_dlib: building dlib $DLIB_VERSION from source (about 7 minutes on 2 cores, once per machine)" >&2
    # -march=native: HOG detection 21 ms instead of 35 ms with dlib's default -mavx (250 px image, this
    # machine); the wheel is cached for this CPU only. --no-binary: never a wheel from a local index.
    if CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) CXXFLAGS="$CXXFLAGS" "$PY" -m pip wheel -q --no-deps --no-cache-dir \
        --no-binary dlib -w "$cache" "dlib==$DLIB_VERSION"; then
        wheel=$(compgen -G "$cache/dlib-$DLIB_VERSION-*.whl" | head -1 || true)
    fi
fi
if [ -n "$wheel" ] && "$PY" -m pip install -q --no-deps "$wheel"; then
    "$PY" -c "import dlib; print('install_dlib: dlib', dlib.__version__, 'BLAS' if dlib.DLIB_USE_BLAS else 'no BLAS', 'AVX' if dlib.USE_AVX_INSTRUCTIONS else 'no AVX')" >&2
else
    use_wheel "the dlib source build failed"
fi
