#!/usr/bin/env bash
# Shared setup for the project's scripts: a persistent target directory and the
# system packages a fresh machine lacks. Sourced, never run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Outside the clone, so a fresh clone or a second run does not rebuild RocksDB and friends.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/consentnet/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

have_libclang() {
  # libclang itself (libclang.so, libclang-14.so.1, ...), not libclang-cpp, which bindgen cannot use.
  local dir
  for dir in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    compgen -G "$dir/libclang.so*" >/dev/null || compgen -G "$dir/libclang-[0-9]*.so*" >/dev/null && return 0
  done
  ldconfig -p 2>/dev/null | grep -Eq '(^|[[:space:]])libclang(-[0-9.]+)?\.so'
}

ensure_libclang() {
  have_libclang && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing libclang-dev (RocksDB's bindings are generated with libclang)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
    have_libclang || die "libclang-dev installed but libclang was not found"
  else
    die "libclang is missing: RocksDB's bindings need it. Install it (Debian/Ubuntu: sudo apt-get install libclang-dev), or set LIBCLANG_PATH."
  fi
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 || die "cargo is missing: install Rust with rustup (https://rustup.rs), stable toolchain."
  for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
      command -v rustup >/dev/null 2>&1 || die "cargo $component is missing and rustup is not available to add it"
      say "adding the $component component"
      rustup component add "$component"
    fi
  done
}

# The portal's page tests drive Debian's headless Chromium through chromedriver.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium and chromium-driver (the portal's browser tests)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    die "Chromium is missing: the portal's browser tests need it (Debian: sudo apt-get install chromium chromium-driver)"
  fi
}

ensure_build_deps() {
  ensure_rust
  ensure_libclang
}
