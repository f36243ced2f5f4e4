"""Verifies a jobtoken JWT with PyJWT, as a Python resource server would.

usage: verify_pyjwt.py JWKS_URL ISSUER AUDIENCE ALG TOKEN
Prints the verified claims as JSON and exits 0; on any problem prints the error and exits 1.
"""

import json
import sys

import jwt

REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
INT_CLAIMS = ["job_id", "pipeline_id", "project_id", "namespace_id", "user_id", "runner_id"]


def main(jwks_url, issuer, audience, alg, token):
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        raise ValueError(f"typ is {header.get('typ')!r}, expected 'at+jwt'")
    key = jwt.PyJWKClient(jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=[alg],
        audience=audience,
        issuer=issuer,
        options={"require": REQUIRED},
    )
    if not isinstance(claims.get("ref_protected"), bool):
        raise ValueError(f"ref_protected is not a JSON boolean: {claims.get('ref_protected')!r}")
    for name in INT_CLAIMS:
        value = claims.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} is not a JSON integer: {value!r}")
    print(json.dumps(claims))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
    except Exception as e:  # noqa: BLE001 - any failure is a rejection, reported with its type
        print(f"pyjwt rejected the token: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
