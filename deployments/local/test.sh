#!/usr/bin/env bash
# Installs what is missing, builds PEL and its tests, and runs the whole test suite.
# Extra arguments go to ctest (for example: -L kafka, -R window).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
pel_install_missing test
pel_build -DPEL_BUILD_TESTS=ON -DPEL_BUILD_BENCH=ON  # benchmarks are built (not run) so they cannot rot
cd "$PEL_BUILD_DIR"
ctest --output-on-failure -j2 --timeout 600 "$@"
