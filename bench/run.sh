#!/usr/bin/env bash
# Builds the benchmarks in Release and runs them; each writes bench/results/<name>.json and
# <name>.md, and this script assembles docs/benchmarks.md from the .md files.
#   usage: bench/run.sh [pipeline|vwap|kafka|alignment|checkpoint|rescale|http|mqtt|edge|idle ...]
#                                                    (default: all)
#          bench/run.sh --report                     (only reassemble docs/benchmarks.md)
# `edge` also builds the edge profile's pel (-DPEL_PROFILE=edge, its own build type) in
# <build dir>-edge and measures it against the full build's pel.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/deployments/local/common.sh"

assemble() {
  {
    echo "# Benchmarks"
    echo
    echo "Each benchmark runs its baseline in the same process on the same prepared input and"
    echo "reports PEL's ratio to it: absolute figures on a shared 2-core machine are noise, ratios"
    echo "hold as long as PEL gets the cores it asks for (the pipeline benchmark reports the cores"
    echo "each side actually got). Regenerate with \`bench/run.sh\`; raw results are in"
    echo "\`bench/results/*.json\`; how each baseline is built is at the top of its"
    echo "\`bench/*_bench.cpp\`."
    for f in "$root"/bench/results/*.md; do
      echo
      cat "$f"
    done
  } > "$root/docs/benchmarks.md"
  echo "wrote docs/benchmarks.md"
}

if [ "${1:-}" = "--report" ]; then
  assemble
  exit 0
fi
PEL_BUILD_DIR="${PEL_BENCH_BUILD_DIR:-$root/build-release}"
PEL_BUILD_TYPE=Release
pel_install_missing
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(pipeline vwap kafka alignment checkpoint rescale http mqtt edge idle)
targets=(pel)
for n in "${names[@]}"; do targets+=("${n}_bench"); done
pel_build -DPEL_BUILD_TESTS=OFF -DPEL_BUILD_BENCH=ON -- "${targets[@]}"
if [[ " ${names[*]} " == *" edge "* ]]; then
  # An empty build type: the profile's own (cmake/pel_profile.cmake).
  (PEL_BUILD_DIR="$PEL_BUILD_DIR-edge" PEL_BUILD_TYPE="" && pel_build -DPEL_PROFILE=edge -- pel)
  export PEL_EDGE_PEL="$PEL_BUILD_DIR-edge/framework/cli/pel"
fi
for n in "${names[@]}"; do
  echo "==> ${n}_bench"
  "$PEL_BUILD_DIR/bench/${n}_bench"
done
assemble
