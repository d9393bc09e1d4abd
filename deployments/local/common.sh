# Shared by the scripts in this folder: installs what is missing and builds PEL.
# Sourced, not run. Uses: PEL_BUILD_DIR (default build), PEL_BUILD_TYPE (default RelWithDebInfo).

PEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEL_BUILD_DIR="${PEL_BUILD_DIR:-$PEL_ROOT/build}"
PEL_BUILD_TYPE="${PEL_BUILD_TYPE:-RelWithDebInfo}"

# Debian 12 packages PEL builds and tests with (see docs/ARCHITECTURE.md, Dependencies).
PEL_PACKAGES=(cmake ninja-build g++ ccache pkg-config libcaf-dev librdkafka-dev libyaml-cpp-dev
  catch2 libsimdjson-dev libspdlog-dev libfmt-dev libcli11-dev libcpp-httplib-dev
  libmosquitto-dev libssl-dev mosquitto mosquitto-clients kcat zlib1g-dev)
# What only the test suite needs: a real Prometheus (and promtool) to scrape /metrics, Chromium
# and Firefox for the dashboard's browser tests, tmux to read `pel top`'s screen.
PEL_TEST_PACKAGES=(chromium firefox-esr prometheus tmux)

# pel_install_missing [test]: the build's packages, and with `test` the test suite's too.
pel_install_missing() {
  local missing=()
  local p
  local wanted=("${PEL_PACKAGES[@]}")
  if [ "${1:-}" = "test" ]; then
    wanted+=("${PEL_TEST_PACKAGES[@]}")
    # Node.js and npm drive the dashboard's browser test (puppeteer-core from npm). A Node.js
    # from elsewhere that brings its own npm is used as it is.
    command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
  fi
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "==> installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
}

# pel_build [extra cmake args...] [-- targets...]
pel_build() {
  local cmake_args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  targets=("$@")
  echo "==> building in $PEL_BUILD_DIR ($PEL_BUILD_TYPE)"
  cmake -S "$PEL_ROOT" -B "$PEL_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$PEL_BUILD_TYPE" \
    "${cmake_args[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$PEL_BUILD_DIR" --target "${targets[@]}"
  else
    cmake --build "$PEL_BUILD_DIR"
  fi
}
