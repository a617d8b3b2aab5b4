"""An independent OAuth 2.0 client (Authlib) run against a consentnet bank node.

It does what a TSP's backend does with a standard library: pushed authorization request
with PKCE (S256) and private_key_jwt, the browser's trip through the consent screen (the
client approves from the consentnet CLI wallet), the token with a DPoP proof, a call to the
unified API with the DPoP-bound token, introspection, revocation, and the refused call
after it. Every step asserts what it expects; it prints a JSON summary and exits 0 only
when all passed.

Inputs (environment): ISSUER, CLIENT_JWK (the app's private Ed25519 JWK, JSON),
REDIRECT_URI, ACCOUNT, CONSENTNET (the CLI binary), WALLET (the client's wallet file;
CONSENTNET_WALLET_PASSPHRASE opens it).
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import warnings

warnings.filterwarnings("ignore")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import OKPKey  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: E402

ISSUER = os.environ["ISSUER"]
KEY = OKPKey.import_key(json.loads(os.environ["CLIENT_JWK"]))
PUBLIC_JWK = {k: v for k, v in KEY.as_dict(private=False).items() if k in ("kty", "crv", "x")}
CLIENT_ID = os.environ["CLIENT_ID"]
REDIRECT_URI = os.environ["REDIRECT_URI"]
ACCOUNT = os.environ["ACCOUNT"]
summary = {}


def check(condition, what, detail=""):
    if not condition:
        print(f"FAILED: {what}: {detail}", file=sys.stderr)
        sys.exit(1)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dpop_proof(method, url, access_token=None):
    """An RFC 9449 proof: typ dpop+jwt, the public JWK in the header."""
    claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
    if access_token is not None:
        claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
    header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": PUBLIC_JWK}
    return jwt.encode(header, claims, KEY, algorithms=["EdDSA"])


# Discovery.
metadata = requests.get(f"{ISSUER}/.well-known/oauth-authorization-server", timeout=10).json()
check(metadata["issuer"] == ISSUER, "metadata names this issuer", metadata)
check("S256" in metadata["code_challenge_methods_supported"], "S256 supported", metadata)
check(metadata["require_pushed_authorization_requests"] is True, "PAR required", metadata)

auth_method = PrivateKeyJWT(alg="EdDSA")
session = OAuth2Session(
    CLIENT_ID,
    client_secret=KEY,
    token_endpoint_auth_method=auth_method,
    revocation_endpoint_auth_method=auth_method,
    redirect_uri=REDIRECT_URI,
)

# 1. Pushed authorization request, PKCE S256, private_key_jwt.
verifier = generate_token(64)
state = generate_token(20)
details = [
    {
        "type": "consentnet",
        "permissions": ["ReadAccountsBasic", "ReadBalances"],
        "valid_until": time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400)),
        "purpose": "Check your balance before a loan offer",
    }
]
par = session.post(
    metadata["pushed_authorization_request_endpoint"],
    data={
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "state": state,
        "authorization_details": json.dumps(details),
    },
    auth=session.client_auth(auth_method),
    withhold_token=True,
    timeout=10,
)
check(par.status_code == 201, "PAR accepted", par.text)
request_uri = par.json()["request_uri"]
summary["par"] = par.status_code

# 2. The browser opens the authorization URL and sees the consent screen.
browser = requests.Session()
authorize_url = metadata["authorization_endpoint"] + "?" + urllib.parse.urlencode(
    {"client_id": CLIENT_ID, "request_uri": request_uri}
)
page = browser.get(authorize_url, allow_redirects=False, timeout=10)
check(page.status_code == 200, "consent screen shown", page.status_code)
check("see your balances" in page.text, "the screen says what is asked in plain words", page.text[:400])
handle = request_uri.rsplit(":", 1)[1]
check(handle in page.text, "the screen shows the request id")

# 3. The client approves from the CLI wallet.
approve = subprocess.run(
    [os.environ["CONSENTNET"], "--json", "wallet", "approve", handle, "--bank", ISSUER,
     "--wallet", os.environ["WALLET"], "--yes"],
    capture_output=True, text=True, timeout=60,
)
check(approve.returncode == 0, "the wallet approves", approve.stderr)
consent_id = json.loads(approve.stdout)["consent_id"]

# 4. The browser comes back to the app with the code, the state and the issuer.
back = browser.get(authorize_url, allow_redirects=False, timeout=10)
check(back.status_code == 303, "redirected back to the app", back.status_code)
location = back.headers["location"]
check(location.startswith(REDIRECT_URI + "?"), "to the registered redirect URI", location)
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
check(query.get("state") == state, "state returned unchanged", query)
check(query.get("iss") == ISSUER, "iss names the issuer (RFC 9207)", query)

# 5. Token, with PKCE and a DPoP proof.
token = session.fetch_token(
    metadata["token_endpoint"],
    grant_type="authorization_code",
    code=query["code"],
    redirect_uri=REDIRECT_URI,
    code_verifier=verifier,
    headers={"DPoP": dpop_proof("POST", metadata["token_endpoint"])},
)
check(token["token_type"] == "DPoP", "a DPoP-bound token", token)
check(token["access_token"] == consent_id, "the token refers to the signed consent", token)
check(token["authorization_details"][0]["consent_id"] == consent_id, "details name the consent", token)
access_token = token["access_token"]


def balances():
    url = f"{ISSUER}/open-banking/v4.0/aisp/accounts/{ACCOUNT}/balances"
    return requests.get(
        url,
        headers={
            "Authorization": f"DPoP {access_token}",
            "DPoP": dpop_proof("GET", url, access_token),
            "x-consentnet-app-version": token["app_version"],
        },
        timeout=10,
    )


# 6. The unified API accepts the token.
served = balances()
check(served.status_code == 200, "the unified API serves the token", served.text)
check(served.json()["Data"]["Balance"][0]["AccountId"] == ACCOUNT, "the account's balance", served.text)

# 7. Introspection.
introspection = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
check(introspection.status_code == 200, "introspection answers", introspection.text)
active = introspection.json()
check(active["active"] is True, "the token is active", active)
check(active["cnf"]["jkt"] == KEY.thumbprint(), "bound to the app's key (cnf.jkt)", active)

# 8. Revocation revokes the consent on the log; the next call is refused.
revoked = session.revoke_token(metadata["revocation_endpoint"], token=access_token)
check(revoked.status_code == 200, "revocation answers 200", revoked.text)
refused = balances()
check(refused.status_code == 401, "the call after revocation is refused: 401", refused.text)
challenge = refused.headers.get("WWW-Authenticate", "")
check(challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge,
      "with the standard challenge (RFC 6750, RFC 9449)", challenge)
code = refused.json()["Code"]
check(code == "consent_revoked", "refused as revoked", refused.text)
inactive = session.introspect_token(metadata["introspection_endpoint"], token=access_token).json()
check(inactive == {"active": False}, "introspection says inactive", inactive)

summary.update(consent_id=consent_id, served=served.status_code, refused=refused.status_code, error=code)
print(json.dumps(summary))
