#!/usr/bin/env bash
# Installs the independent (non-Rust) verifiers that tests/interop.rs runs:
#   - PyJWT + cryptography (tests/interop/requirements.txt) into target/interop/venv
#   - jose (tests/interop/package-lock.json) into tests/interop/node_modules
# Idempotent and fast when already done: each half is skipped while its stamp matches the pinned
# list it was installed from and the packages still import. Needs python3 (with pip) and node+npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/interop/venv"
mkdir -p "$root/target/interop"

# Serialize concurrent runs (two `cargo test` at once) where flock exists.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$root/target/interop/setup.lock"
    flock 9
fi

# ---- Python: PyJWT[crypto] + cryptography in a venv ----
py_stamp="$venv/.jobtoken-requirements"
if [ -f "$py_stamp" ] && cmp -s "$here/requirements.txt" "$py_stamp" \
    && "$venv/bin/python" -c 'import jwt, cryptography' >/dev/null 2>&1; then
    :
else
    echo "interop setup: creating $venv" >&2
    rm -rf "$venv"
    if python3 -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; then
        pip=("$venv/bin/python" -m pip)
    else
        # Debian without python3-venv has no ensurepip: make a bare venv and let the system pip
        # (>= 22.3) install into it.
        rm -rf "$venv"
        python3 -m venv --without-pip "$venv"
        pip=(python3 -m pip --python "$venv/bin/python")
    fi
    "${pip[@]}" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
    "$venv/bin/python" -c 'import jwt, cryptography; print("interop setup: PyJWT", jwt.__version__, "cryptography", cryptography.__version__)' >&2
    cp "$here/requirements.txt" "$py_stamp"
fi

# ---- Node: jose, exactly as package-lock.json pins it ----
node_stamp="$here/node_modules/.jobtoken-package-lock.json"
if [ -f "$node_stamp" ] && cmp -s "$here/package-lock.json" "$node_stamp" && [ -f "$here/node_modules/jose/package.json" ]; then
    :
else
    echo "interop setup: npm ci in $here" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$here/package-lock.json" "$node_stamp"
fi
