// A TSP's backend written with openid-client (a certified FAPI 2.0 relying party, on
// oauth4webapi), used unchanged against a consentnet bank: discovery, PAR with PKCE,
// private_key_jwt and DPoP (Ed25519 keys, so alg "Ed25519" per RFC 9864, with the
// server's nonces), the consent screen approved from the client's CLI wallet, the code
// exchanged for a DPoP-bound token, a call to the unified API, the grant queried and
// revoked through grant management, the revocation told to the app as a SET the bank
// signed (pushed to its event endpoint, or taken by polling), and the refused call after
// it. Every step asserts what it expects; it prints a JSON summary and exits 0 only when
// all passed.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_JWK (the app's private Ed25519 JWK, e.g. from
// `consentnet wallet export-jwk`), REDIRECT_URI, CONSENTNET (the CLI), WALLET (the
// client's; CONSENTNET_WALLET_PASSPHRASE opens it); optionally EVENTS_PORT (where the
// app's registered event endpoint listens; without it the app polls). Over HTTPS with a
// private CA, set NODE_EXTRA_CA_CERTS and CONSENTNET_CA_FILE to it.

import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import * as client from 'openid-client';
import * as jose from 'jose';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const summary = {};
function check(condition, what, detail = '') {
  if (!condition) {
    console.error(`FAILED: ${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    process.exit(1);
  }
}

const ISSUER = env('ISSUER');
const CLIENT_ID = env('CLIENT_ID');
const REDIRECT_URI = env('REDIRECT_URI');
const EVENTS_PORT = process.env.EVENTS_PORT;

// The bank's public key, from its did:key (multibase base58btc of 0xed01 and the key).
async function bankKey() {
  const { did } = await (await fetch(`${ISSUER}/.well-known/consentnet-node`)).json();
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let value = 0n;
  for (const c of did.slice('did:key:z'.length)) value = value * 58n + BigInt(alphabet.indexOf(c));
  const bytes = [];
  while (value > 0n) { bytes.unshift(Number(value % 256n)); value /= 256n; }
  check(bytes.length === 34 && bytes[0] === 0xed && bytes[1] === 0x01, 'the bank names an Ed25519 did:key', did);
  const x = Buffer.from(bytes.slice(2)).toString('base64url');
  return jose.importJWK({ kty: 'OKP', crv: 'Ed25519', x }, 'EdDSA');
}
const jwk = JSON.parse(env('CLIENT_JWK'));
const { d, ...publicJwk } = jwk;
const privateKey = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
const publicKey = await crypto.subtle.importKey('jwk', publicJwk, { name: 'Ed25519' }, true, ['verify']);

// The app's event endpoint, when it registered one: takes each SET with 202 (RFC 8935).
const pushed = [];
const endpoint = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => { body += chunk; });
  request.on('end', () => {
    pushed.push({ type: request.headers['content-type'], body });
    response.writeHead(202).end();
  });
});
if (EVENTS_PORT) {
  await new Promise((resolve) => endpoint.listen(Number(EVENTS_PORT), '127.0.0.1', resolve));
}

// 1. Discovery (RFC 8414), client authentication by private_key_jwt with the app's key.
const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  { redirect_uris: [REDIRECT_URI] },
  client.PrivateKeyJwt(privateKey),
  { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
);
const metadata = config.serverMetadata();
check(metadata.dpop_signing_alg_values_supported?.includes('Ed25519'), 'DPoP with Ed25519 advertised', metadata);
check(metadata.grant_management_endpoint, 'grant management advertised', metadata);
const DPoP = client.getDPoPHandle(config, { privateKey, publicKey });

// 2. PAR, PKCE S256, DPoP (the code bound to the key); the server's nonce is taken on the way.
const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const details = [{ type: 'consentnet', permissions: ['ReadAccountsBasic', 'ReadBalances'], purpose: 'Check your balance before a loan offer' }];
const authorizeUrl = await client.buildAuthorizationUrlWithPAR(
  config,
  {
    redirect_uri: REDIRECT_URI,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    authorization_details: JSON.stringify(details),
  },
  { DPoP },
);
summary.par = 'ok';

// 3. The browser opens the consent screen; the client approves from its wallet.
const page = await fetch(authorizeUrl, { redirect: 'manual' });
check(page.status === 200, 'the consent screen', page.status);
const cookie = page.headers.get('set-cookie').split(';')[0];
const handle = authorizeUrl.searchParams.get('request_uri').split(':').pop();
const approved = JSON.parse(execFileSync(
  env('CONSENTNET'),
  ['--json', 'wallet', 'approve', handle, '--bank', ISSUER, '--wallet', env('WALLET'), '--yes'],
  { encoding: 'utf8' },
));

// 4. Back to the app with the code; the token, DPoP-bound.
const back = await fetch(authorizeUrl, { redirect: 'manual', headers: { cookie } });
check(back.status === 303, 'redirected back to the app', back.status);
const tokens = await client.authorizationCodeGrant(
  config,
  new URL(back.headers.get('location')),
  { pkceCodeVerifier: verifier, expectedState: state },
  undefined,
  { DPoP },
);
check(tokens.token_type.toLowerCase() === 'dpop', 'a DPoP-bound token', tokens);
check(tokens.access_token === approved.consent_id, 'the token is the signed consent', tokens);
check(tokens.grant_id === approved.consent_id, 'grant_id names the consent', tokens);

// 5. The unified API serves it (the nonce retry done by the library).
const version = () => new Headers({ 'x-consentnet-app-version': tokens.app_version });
const accountsUrl = new URL(`${ISSUER}/open-banking/v4.0/aisp/accounts`);
const accounts = await client.fetchProtectedResource(config, tokens.access_token, accountsUrl, 'GET', undefined, version(), { DPoP });
const account = (await accounts.json()).Data?.Account?.[0]?.AccountId;
check(accounts.status === 200 && account, 'the consent\'s accounts', account);
const balances = new URL(`${ISSUER}/open-banking/v4.0/aisp/accounts/${account}/balances`);
const served = await client.fetchProtectedResource(config, tokens.access_token, balances, 'GET', undefined, version(), { DPoP });
check(served.status === 200, 'the unified API serves the token', await served.clone().text());
summary.served = served.status;

// 6. Grant management: the grant queried, then revoked, with a client credentials token.
const management = await client.clientCredentialsGrant(
  config,
  { scope: 'grant_management_query grant_management_revoke' },
  { DPoP },
);
const grantUrl = new URL(`${metadata.grant_management_endpoint}/${tokens.grant_id}`);
const grant = await client.fetchProtectedResource(config, management.access_token, grantUrl, 'GET', undefined, undefined, { DPoP });
const grantBody = await grant.json();
check(grant.status === 200 && grantBody.status === 'active', 'the grant is active', grantBody);
const revoked = await client.fetchProtectedResource(config, management.access_token, grantUrl, 'DELETE', undefined, undefined, { DPoP });
check(revoked.status === 204, 'the grant is revoked', revoked.status);

// 7. The app hears of it: pushed to its endpoint, or by polling (RFC 8936), as a SET the
// bank signed for this app.
let set;
const deadline = Date.now() + 10_000;
const eventsUrl = new URL(`${ISSUER}/open-banking/v4.0/events`);
while (!set && Date.now() < deadline) {
  if (EVENTS_PORT) {
    if (pushed.length) {
      check(pushed[0].type === 'application/secevent+jwt', 'as a SET', pushed[0].type);
      set = pushed[0].body;
    }
  } else {
    const polled = await client.fetchProtectedResource(
      config, management.access_token, eventsUrl, 'POST',
      JSON.stringify({ maxEvents: 10, returnImmediately: true, ack: [] }),
      new Headers({ 'content-type': 'application/json' }), { DPoP },
    );
    const sets = Object.values((await polled.json()).sets ?? {});
    set = sets.find((s) => jose.decodeJwt(s).events?.['urn:uk:org:openbanking:events:consent-authorization-revoked']
      ?.subject?.['http://openbanking.org.uk/rid'] === tokens.grant_id);
  }
  if (!set) await new Promise((r) => setTimeout(r, 100));
}
check(set, 'the app is told of the revocation');
summary.told_by = EVENTS_PORT ? 'push' : 'polling';
const { payload, protectedHeader } = await jose.jwtVerify(set, await bankKey(), {
  issuer: ISSUER,
  audience: CLIENT_ID,
  typ: 'secevent+jwt',
});
const event = payload.events['urn:uk:org:openbanking:events:consent-authorization-revoked'];
check(event?.subject['http://openbanking.org.uk/rid'] === tokens.grant_id, 'naming the grant', payload);
summary.event = Object.keys(payload.events)[0];
summary.event_alg = protectedHeader.alg;

// 8. The call after it is refused with the standard challenge.
try {
  const refused = await client.fetchProtectedResource(config, tokens.access_token, balances, 'GET', undefined, version(), { DPoP });
  check(false, 'the call after revocation is refused', refused.status);
} catch (error) {
  check(error instanceof client.WWWAuthenticateChallengeError, 'refused with a challenge', String(error));
  const challenge = error.cause[0];
  check(challenge.scheme === 'dpop' && challenge.parameters.error === 'invalid_token', 'invalid_token', error.cause);
  summary.refused = error.response.status;
  summary.error = challenge.parameters.error;
}
endpoint.close();
console.log(JSON.stringify(summary));
