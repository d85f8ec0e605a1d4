#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine:
# installs the packages, builds build-asan/ with AddressSanitizer +
# UndefinedBehaviorSanitizer and -Werror, runs ctest. Exit status: ctest's.
#
# Extra arguments go to ctest, e.g. `deploy/test.sh -L unit` or `-R harness`.
# Every SC_* variable in the environment is configuration to the programs
# under test (an unknown one is an error), so this script's own knobs are
# named SCTEST_*.
# SCTEST_BUILD_DIR overrides the build directory (default build-asan).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${SCTEST_BUILD_DIR:-build-asan}

bash deploy/install-deps.sh

cmake -S . -B "$BUILD" -DSC_SANITIZE=ON -DSC_WERROR=ON
cmake --build "$BUILD" -j2

# Leaks fail a test; the first UB report stops the program with a stack.
# Options the caller set come last and win.
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# --timeout: the default for tests that set none (integration tests set theirs).
rc=0
ctest --test-dir "$BUILD" --output-on-failure --timeout 600 "$@" || rc=$?

# The libFuzzer targets of every parser of outside input, each for
# SCTEST_FUZZ_SECONDS (default 60), built with clang in build-fuzz/. Skipped
# when ctest arguments select tests (a partial run).
if (($# == 0)); then
  FUZZ=${SCTEST_FUZZ_BUILD_DIR:-build-fuzz}
  CC=clang cmake -S . -B "$FUZZ" -DSC_FUZZ=ON -DSC_TESTS=ON \
    -DSC_FUZZ_SECONDS="${SCTEST_FUZZ_SECONDS:-60}" >/dev/null
  cmake --build "$FUZZ" -j2 --target fuzz_payload fuzz_mqsub_codec
  ctest --test-dir "$FUZZ" -L fuzz --output-on-failure || rc=$?
fi
exit "$rc"
