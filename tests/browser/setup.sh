#!/usr/bin/env bash
# Installs what tests/browser.rs drives: Debian's Chromium (packages chromium, chromium-driver) and,
# from tests/browser/package-lock.json, playwright-core (no browser download: the tests launch the
# system chromium) and axe-core into tests/browser/node_modules.
# Idempotent and fast when already done: apt runs only while chromium or chromedriver is missing,
# npm ci only while the stamp differs from the lock file. apt needs root (or sudo); npm needs node.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$root/target/browser"

# Serialize concurrent runs (two `cargo test` at once) where flock exists.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$root/target/browser/setup.lock"
    flock 9
fi

# ---- Debian: chromium + chromium-driver ----
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "browser setup: chromium and chromium-driver are missing, and installing them needs root or sudo" >&2
        echo "browser setup: run as root: apt-get install chromium chromium-driver" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "browser setup: chromium is missing and there is no apt-get to install it (Debian expected)" >&2
        exit 1
    fi
    echo "browser setup: apt-get install chromium chromium-driver" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    echo "browser setup: $(chromium --version 2>/dev/null | head -1)" >&2
fi

# ---- Node: playwright-core + axe-core, exactly as package-lock.json pins them ----
if ! command -v npm >/dev/null 2>&1; then
    echo "browser setup: node and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
fi
node_stamp="$here/node_modules/.jobtoken-package-lock.json"
if [ -f "$node_stamp" ] && cmp -s "$here/package-lock.json" "$node_stamp" \
    && [ -f "$here/node_modules/playwright-core/package.json" ] && [ -f "$here/node_modules/axe-core/axe.min.js" ]; then
    :
else
    echo "browser setup: npm ci in $here" >&2
    # playwright-core never downloads a browser; the variable keeps any postinstall from trying.
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$here/package-lock.json" "$node_stamp"
fi
