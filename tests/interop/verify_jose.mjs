// Verifies a jobtoken JWT with jose (panva), as a Node.js resource server would.
//
// usage: node verify_jose.mjs JWKS_URL ISSUER AUDIENCE ALG TOKEN
// Prints the verified claims as JSON and exits 0; on any problem prints the error and exits 1.
import { createRemoteJWKSet, jwtVerify } from "jose";

const REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"];
const INT_CLAIMS = ["job_id", "pipeline_id", "project_id", "namespace_id", "user_id", "runner_id"];

const args = process.argv.slice(2);
if (args.length !== 5) {
  console.error("usage: node verify_jose.mjs JWKS_URL ISSUER AUDIENCE ALG TOKEN");
  process.exit(1);
}
const [jwksUrl, issuer, audience, alg, token] = args;

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt",
    algorithms: [alg],
    requiredClaims: REQUIRED,
  });
  if (protectedHeader.alg !== alg) throw new Error(`alg is ${protectedHeader.alg}, expected ${alg}`);
  if (typeof payload.ref_protected !== "boolean") {
    throw new Error(`ref_protected is not a JSON boolean: ${JSON.stringify(payload.ref_protected)}`);
  }
  for (const name of INT_CLAIMS) {
    if (!Number.isSafeInteger(payload[name])) throw new Error(`${name} is not a JSON integer: ${payload[name]}`);
  }
  console.log(JSON.stringify(payload));
} catch (e) {
  console.error(`jose rejected the token: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
