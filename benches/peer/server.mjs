// The peer of benches/run.sh: panva's oidc-provider (the version pinned in package.json), with
// its default in-memory adapter, issuing ES256 JWT access tokens through client_credentials.
// Resource indicators (RFC 8707) make the access token a JWT (without a resource it would be an
// opaque reference token). PEER_WORKERS processes (node:cluster; default: one per core, like
// `jobtoken serve`'s workers) share one port and one signing key. Prints
// `listening on http://127.0.0.1:PORT` when every worker listens; SIGTERM stops them all.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';

const workers = Number(process.env.PEER_WORKERS || os.availableParallelism());

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

if (cluster.isPrimary) {
  const port = await freePort();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
  let listening = 0;
  for (let i = 0; i < workers; i += 1) {
    const w = cluster.fork({ PEER_PORT: String(port), PEER_JWK: JSON.stringify(jwk) });
    w.on('message', (m) => {
      if (m === 'listening' && (listening += 1) === workers) {
        console.log(`listening on http://127.0.0.1:${port} (${workers} workers, pids ${Object.values(cluster.workers).map((x) => x.process.pid).join(' ')})`);
      }
    });
  }
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      console.error(`worker ${w.process.pid} exited (${signal || code})`);
      process.exit(1);
    }
  });
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200);
  });
} else {
  const { default: Provider } = await import('oidc-provider');
  const port = Number(process.env.PEER_PORT);
  const resource = 'https://api.bench.example';
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'bench-client',
      client_secret: 'bench-client-secret-0123456789abcdef',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      scope: 'api:read',
    }],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    scopes: ['api:read'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api:read',
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  process.on('SIGTERM', () => process.exit(0));
  provider.listen(port, '127.0.0.1', () => process.send('listening'));
}
