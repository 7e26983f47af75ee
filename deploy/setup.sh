#!/usr/bin/env bash
# Prepares this checkout to run: system packages (nats-server, LLVM/MLIR 19, OpenBLAS for the
# kernel benchmark's reference, pocketsphinx and espeak-ng for the speech operators), pnpm
# (pinned), dependencies from the lockfile, the native addon and the TypeScript build. Idempotent: when everything is present it finishes in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
say() { printf 'setup: %s\n' "$*" >&2; }

# Each tool we need and the Debian package that provides it.
declare -A PACKAGE_OF=(
  [nats-server]=nats-server
  [mlir-opt-19]=mlir-19-tools
  [mlir-translate-19]=mlir-19-tools
  [llc-19]=llvm-19
  [clang-19]=clang-19
  [openssl]=openssl
  [ip]=iproute2
  [nft]=nftables
  [chromium]=chromium
  # @stitch/speech: the text-to-speech engine.
  [espeak-ng]=espeak-ng
  # test/deploy-manifests checks the systemd units with it.
  [systemd-analyze]=systemd
)
missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
[ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] || [ "$(uname -m)" != x86_64 ] ||
  missing+=(libopenblas-dev)
# @stitch/speech: its speech-to-text worker is compiled against libpocketsphinx and loads this model.
[ -e /usr/include/pocketsphinx/pocketsphinx.h ] || missing+=(libpocketsphinx-dev)
[ -e /usr/share/pocketsphinx/model/en-us/en-us.lm.bin ] || missing+=(pocketsphinx-en-us)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 ||
  missing+=(make g++ python3)

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${packages[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
  else
    say "missing system packages: ${packages[*]}"
    say "install them with: sudo apt-get update && sudo apt-get install -y ${packages[*]}"
    exit 1
  fi
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >&2
fi

# The addon is built by its install script; a frozen lockfile keeps every machine on the same versions.
pnpm install --frozen-lockfile --reporter=silent >&2
[ -e native/build/Release/stitch_native.node ] || pnpm --filter @stitch/native run build >&2
pnpm exec turbo run build --output-logs=errors-only >&2
