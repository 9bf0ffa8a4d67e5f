#!/usr/bin/env bash
# Prepares a machine to run and test MoC Studio. Idempotent: safe to run before every start.
#   - Debian's Chromium (the e2e browser; its SwiftShader ICD also gives Dawn a Vulkan device
#     on machines without a GPU) and libvulkan1 (the Vulkan loader Dawn needs in Node),
#     installed with apt-get when missing;
#   - with --python: python3-torch, python3-numpy, python3-pytest (train/'s tests);
#   - node_modules from package-lock.json (`npm ci`) when missing or older than the lockfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Node.js: the engines field asks for >= 20.19 (require(esm), stable WebGPU package).
command -v node >/dev/null || die "Node.js is not installed; install Node 20.19+ (https://nodejs.org) and run this again."
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node $(node --version) is too old; MoC Studio needs Node 20.19 or newer."

# System packages.
have_vulkan_loader() {
  PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' \
    || compgen -G '/usr/lib/*/libvulkan.so.1' >/dev/null || compgen -G '/lib/*/libvulkan.so.1' >/dev/null
}
missing=()
if [[ ! -x /usr/bin/chromium || ! -f /usr/lib/chromium/vk_swiftshader_icd.json ]]; then
  missing+=(chromium fonts-liberation) # the font is only recommended, and screenshots need one
fi
if ! have_vulkan_loader; then missing+=(libvulkan1); fi
# `setup.sh --python` (the test command): Debian's PyTorch, numpy and pytest for train/'s tests.
# They run on Debian's own interpreter, /usr/bin/python3 (PyPI is not used).
if [[ " $* " == *" --python "* ]] && ! /usr/bin/python3 -c 'import torch, numpy, pytest' 2>/dev/null; then
  missing+=(python3-torch python3-numpy python3-pytest)
fi
# ... and black, the formatter of train/ that the test command checks.
if [[ " $* " == *" --python "* ]] && [[ ! -x /usr/bin/black ]]; then missing+=(black); fi
if ((${#missing[@]})); then
  command -v apt-get >/dev/null \
    || die "please install ${missing[*]} with your package manager (Chromium must provide /usr/bin/chromium and /usr/lib/chromium/vk_swiftshader_icd.json)."
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "installing ${missing[*]} needs root: run 'apt-get install ${missing[*]}' as root."
    sudo=(sudo)
  fi
  say "installing ${missing[*]} with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# JavaScript dependencies. npm writes node_modules/.package-lock.json on every install, so a
# lockfile newer than it means the dependencies changed since.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
say "ready"
