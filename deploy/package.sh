#!/usr/bin/env bash
# Builds the Debian package for operators: a release build without
# sanitizers or tests in its own directory, then cpack. Prints the path of
# the .deb. docs/operations.md describes what it installs.
#
#   deploy/package.sh [BUILD_DIR]     (default build-pkg)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build-pkg}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSC_SANITIZE=OFF -DSC_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2
(cd "$BUILD" && cpack -G DEB >&2)
ls "$BUILD"/service-cloud_*.deb
