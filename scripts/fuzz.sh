#!/usr/bin/env bash
# Fuzz the request parser and the encoders (tests/fuzz/fuzz_request.c) with
# libFuzzer, ASan and UBSan.
#
#   scripts/fuzz.sh            build into build-fuzz/ with clang, then run for
#                              FUZZ_SECONDS (default 60) over tests/fuzz/corpus/
#   scripts/fuzz.sh FILE...    build, then run just these inputs (a crash to
#                              reproduce, or the corpus to re-check)
#
# New interesting inputs go to build-fuzz/corpus/ (not committed; copy the
# good ones into tests/fuzz/corpus/). A crash, leak, sanitizer report or a
# failed property is written to build-fuzz/crash-* and the script exits
# non-zero. Needs clang and libclang-rt-14-dev (scripts/dev.sh fuzz installs
# them); the api/ and common/ sources are compiled directly, not through CMake.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${FUZZ_BUILD_DIR:-build-fuzz}
cc=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-60}
mkdir -p "$out/corpus"

# shellcheck disable=SC2046 # pkg-config output is meant to be split
"$cc" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter \
    -D_GNU_SOURCE -DSPAWND_VERSION='"fuzz"' -I. $(pkg-config --cflags json-c) \
    tests/fuzz/fuzz_request.c api/*.c common/*.c $(pkg-config --libs json-c) \
    -o "$out/fuzz_request"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ $# -gt 0 ]; then
    exec "$out/fuzz_request" "$@"
fi
set +e
"$out/fuzz_request" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -dict=tests/fuzz/request.dict -print_final_stats=1 -artifact_prefix="$out/" \
    "$out/corpus" tests/fuzz/corpus 2>"$out/fuzz.log"
rc=$?
set -e
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$out/fuzz.log" >&2 || true
if [ $rc -ne 0 ]; then
    tail -n 60 "$out/fuzz.log" >&2
    echo "fuzz: FAILED (exit $rc); the input is in $out/crash-* (or leak-*/timeout-*/oom-*);" \
         "reproduce with scripts/fuzz.sh $out/<file>" >&2
    exit 1
fi
echo "fuzz: no crash in ${seconds}s (log: $out/fuzz.log)" >&2
