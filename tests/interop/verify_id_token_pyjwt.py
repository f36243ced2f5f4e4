"""Verifies a jobtoken OIDC ID token with PyJWT in strict mode, as a federation consumer would.

usage: verify_id_token_pyjwt.py JWKS_URL ISSUER AUDIENCE ALG TOKEN
Prints the verified claims as JSON and exits 0; on any problem prints the error and exits 1.
"""

import json
import sys

import jwt

REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
STRING_CLAIMS = ["project_id", "project_path", "namespace_id", "ref", "ref_type", "ref_protected", "job_id"]


def main(jwks_url, issuer, audience, alg, token):
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "JWT":
        raise ValueError(f"typ is {header.get('typ')!r}, expected 'JWT'")
    if not isinstance(header.get("kid"), str):
        raise ValueError("no kid in the header")
    key = jwt.PyJWKClient(jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=[alg],
        audience=audience,
        issuer=issuer,
        options={"require": REQUIRED},
    )
    for name in ["exp", "iat", "nbf"]:
        value = claims.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} is not an integer: {value!r}")
    for name in STRING_CLAIMS:
        if not isinstance(claims.get(name), str):
            raise ValueError(f"{name} is not a string: {claims.get(name)!r}")
    print(json.dumps(claims))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
    except Exception as e:  # noqa: BLE001 - any failure is a rejection, reported with its type
        print(f"pyjwt rejected the token: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
