#!/usr/bin/env bash
# Every test MoC Studio has, in one command (`npm test`): setup, typecheck, lint, unit and
# kernel tests (Vitest, real WGSL on Dawn — SwiftShader without a GPU), and the e2e test
# (Playwright, headless Chromium with WebGPU over SwiftShader), and train/'s pytest suite on
# Debian's PyTorch (CPU). Every step runs even if an
# earlier one failed; the summary at the end lists them and the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --python || exit 1
export PATH="$PWD/node_modules/.bin:$PATH"

declare -a results
step() {
  local name=$1
  shift
  printf '\n━━ %s  (%s)\n' "$name" "$*"
  local t0=$SECONDS
  if "$@"; then results+=("ok    $name ($((SECONDS - t0)) s)"); else
    results+=("FAIL  $name ($((SECONDS - t0)) s)")
    failed=1
  fi
}

failed=0
step typecheck tsc -p tsconfig.json --noEmit
step lint eslint .
step format bash -c 'prettier --check . >/dev/null && /usr/bin/black --check -q train && echo "formatting: ok" || { echo "formatting differs: run npx prettier --write . && black train"; exit 1; }'
step "unit + kernel tests" vitest run
step "python tests (train/)" /usr/bin/python3 -m pytest train/tests -q -p no:cacheprovider
step e2e playwright test

printf '\n━━ summary\n'
printf '  %s\n' "${results[@]}"
exit "$failed"
