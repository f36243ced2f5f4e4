// Verifies a jobtoken OIDC ID token with jose (panva) in strict mode, as a federation consumer
// would: typ "JWT", one algorithm, issuer, audience, the registered claims required.
//
// usage: node verify_id_token_jose.mjs JWKS_URL ISSUER AUDIENCE ALG TOKEN
// Prints the verified claims as JSON and exits 0; on any problem prints the error and exits 1.
import { createRemoteJWKSet, jwtVerify } from "jose";

const REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"];
const STRING_CLAIMS = ["project_id", "project_path", "namespace_id", "ref", "ref_type", "ref_protected", "job_id"];

const args = process.argv.slice(2);
if (args.length !== 5) {
  console.error("usage: node verify_id_token_jose.mjs JWKS_URL ISSUER AUDIENCE ALG TOKEN");
  process.exit(1);
}
const [jwksUrl, issuer, audience, alg, token] = args;

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "JWT",
    algorithms: [alg],
    requiredClaims: REQUIRED,
  });
  if (protectedHeader.alg !== alg) throw new Error(`alg is ${protectedHeader.alg}, expected ${alg}`);
  if (typeof protectedHeader.kid !== "string") throw new Error("no kid in the header");
  for (const name of ["exp", "iat", "nbf"]) {
    if (!Number.isSafeInteger(payload[name])) throw new Error(`${name} is not an integer: ${payload[name]}`);
  }
  for (const name of STRING_CLAIMS) {
    if (typeof payload[name] !== "string") throw new Error(`${name} is not a string: ${payload[name]}`);
  }
  console.log(JSON.stringify(payload));
} catch (e) {
  console.error(`jose rejected the token: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
