#!/usr/bin/env bash
# Runs dashboard.test.js for ctest (see browser.cmake): installs puppeteer-core from
# package-lock.json into a copy of this folder in the build tree when it is missing, then runs
# the scenario. Exit 77 (ctest SKIP) when node, npm's packages or Chromium are absent.
#   usage: run.sh PEL SOURCE_DIR WORK_DIR OUT_DIR SCENARIO
set -euo pipefail
pel=$1 source_dir=$2 work=$3 out=$4 scenario=$5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }

node=${PEL_NODE:-$(command -v node || true)}
[[ -n $node ]] || skip "node is not installed (Debian package nodejs)"
if [[ $scenario == firefox ]]; then
  browser=${PEL_FIREFOX:-} flag=--firefox candidates="/usr/bin/firefox-esr /usr/bin/firefox"
  missing="Firefox is not installed (Debian package firefox-esr, or set PEL_FIREFOX)"
else
  browser=${PEL_CHROMIUM:-} flag=--chromium candidates="/usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome"
  missing="Chromium is not installed (Debian package chromium, or set PEL_CHROMIUM)"
fi
if [[ -z $browser ]]; then
  for c in $candidates; do
    if [[ -x $c ]]; then browser=$c; break; fi
  done
fi
[[ -n $browser && -x $browser ]] || skip "$missing"

mkdir -p "$work" "$out"
# One npm install at a time: both scenarios share the folder.
exec 9>"$work/.install.lock"
flock -w 300 9 || skip "could not lock $work/.install.lock"
for f in package.json package-lock.json dashboard.test.js; do
  cmp -s "$here/$f" "$work/$f" || cp "$here/$f" "$work/$f"
done
if [[ ! -f $work/node_modules/puppeteer-core/package.json ]] ||
   ! cmp -s "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed"; then
  npm=$(command -v npm || true)
  [[ -n $npm ]] || skip "puppeteer-core is not installed and there is no npm to install it"
  echo "installing puppeteer-core (npm ci) in $work"
  if ! (cd "$work" && "$npm" ci --no-audit --no-fund --loglevel=error); then
    skip "npm ci failed: puppeteer-core is not installed"
  fi
  cp "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed"
fi
exec 9>&-

cd "$work"
exec "$node" dashboard.test.js --pel "$pel" --source-dir "$source_dir" --out "$out" \
  --scenario "$scenario" "$flag" "$browser"
