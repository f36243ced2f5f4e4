#!/usr/bin/env bash
# Installs what tests/registry.rs runs against: Debian's docker-registry (distribution 2.8) and
# skopeo. Idempotent: does nothing when both are already on PATH. Needs root and apt (Debian).
set -euo pipefail

if command -v docker-registry >/dev/null 2>&1 && command -v skopeo >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Do not let the package start its own registry service on port 5000.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-registry skopeo >/dev/null
echo "registry setup: $(docker-registry --version 2>&1 | head -1); $(skopeo --version)" >&2
