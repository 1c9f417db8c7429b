#!/usr/bin/env bash
# The project's two commands, and what CI runs.
#
#   scripts/dev.sh run        install missing build dependencies, build, run spawnd
#                             on 127.0.0.1:8080 (extra arguments go to spawnd)
#   scripts/dev.sh test       install missing dependencies, build, run the whole suite
#   scripts/dev.sh sanitize   the same suite built with AddressSanitizer + UBSan
#   scripts/dev.sh fuzz       libFuzzer over the request parser and encoders for
#                             FUZZ_SECONDS (default 60); see scripts/fuzz.sh
#
# Dependencies come only from Debian 12's packages (apt). Set BUILD_DIR to
# build elsewhere than build/ (build-asan/ for sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."

build_deps=(gcc libc6-dev make cmake pkg-config libmicrohttpd-dev libjson-c-dev)
test_deps=(libcurl4-openssl-dev procps openssl)
# it_nginx runs a real nginx; it_openapi installs its linter with npm. Only
# when the command is missing, so a Node.js from elsewhere (with its own npm)
# is left alone.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || test_deps+=(nginx-light)
command -v npm >/dev/null 2>&1 || test_deps+=(npm)
# The fork tests run real Node.js children and a Python worker.
command -v node >/dev/null 2>&1 || test_deps+=(nodejs)
command -v python3 >/dev/null 2>&1 || test_deps+=(python3)

fuzz_deps=(clang libclang-rt-14-dev pkg-config libjson-c-dev)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

configure_build() { # dir, extra cmake args...
    local dir=$1; shift
    local werror=OFF
    [ -n "${CI:-}" ] && werror=ON
    cmake -S . -B "$dir" -DSPAWND_WERROR=$werror "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

run_suite() { # dir
    (cd "$1" && ctest --output-on-failure -j"$(nproc)" --timeout 600)
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
    install_missing "${build_deps[@]}"
    dir=${BUILD_DIR:-build}
    configure_build "$dir" -DCMAKE_BUILD_TYPE=Release -DSPAWND_TESTS=OFF
    exec "$dir/spawnd" --listen 127.0.0.1:8080 "$@"
    ;;
test)
    install_missing "${build_deps[@]}" "${test_deps[@]}"
    dir=${BUILD_DIR:-build}
    configure_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPAWND_TESTS=ON
    run_suite "$dir"
    ;;
sanitize)
    install_missing "${build_deps[@]}" "${test_deps[@]}"
    dir=${BUILD_DIR:-build-asan}
    configure_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DSPAWND_TESTS=ON -DSPAWND_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite "$dir"
    ;;
fuzz)
    install_missing "${fuzz_deps[@]}"
    exec scripts/fuzz.sh "$@"
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
