#!/usr/bin/env bash
# Installs what is missing, builds pel, and runs the main job on embedded defaults:
# the embedded Kafka broker, a market feed into topic `ticks`, the live trading analytics
# (1 s OHLC bars + VWAP per symbol, price-jump alerts) into topics `bars` and `alerts`, and a
# table of what arrived there. Stops by itself after DURATION (default 20s), or on Ctrl-C.
#   usage: deployments/local/quickstart.sh [DURATION] [pel run options...]
#   e.g.   deployments/local/quickstart.sh 10m --http 127.0.0.1:8080   (dashboard and API)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
duration="${1:-20s}"
[ $# -gt 0 ] && shift
pel_install_missing
pel_build -DPEL_BUILD_TESTS=OFF -DPEL_BUILD_BENCH=OFF -- pel
cd "$PEL_ROOT"
echo "==> running the live trading pipeline for $duration (Ctrl-C stops it cleanly)"
exec "$PEL_BUILD_DIR/framework/cli/pel" run --duration "$duration" \
  --embedded-kafka ticks:4,bars:4,alerts:1 "$@" \
  examples/trading/feed.yaml examples/trading/live.yaml examples/trading/show.yaml
