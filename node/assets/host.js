// consentnet mini-app host: hands the sandboxed frame one end of a MessageChannel and
// answers what it asks through it. The frame has an opaque origin and no network; this
// bridge is its only way to the bank. It refuses any operation the bank did not allow
// the app version, asks the client's consent the first time (signed by the client's
// browser key, from wallet.js), and calls the bank's unified API with proofs signed by
// a key made for this app in this browser, which neither the app nor the page can read.
// Payments have a consent of their own, with limits the client sets on its screen.
"use strict";
(function () {
  const host = document.getElementById("host");
  const frame = document.getElementById("miniapp");
  if (!host || !frame) return;
  const app = host.dataset.app;
  const version = host.dataset.version;
  const node = host.dataset.node;
  const operations = JSON.parse(host.dataset.operations || "[]");
  const API = "/open-banking/v4.0/aisp";

  function say(id, text) {
    const line = document.getElementById(id);
    if (line) line.textContent = text;
  }

  class Refusal {
    constructor(code, message) {
      this.code = code;
      this.message = message;
    }
  }

  // This app's installation in this browser: its key pair and, once granted, its consent.
  const INSTALLS = "consentnet-miniapps";
  function installs(mode, op) {
    return new Promise((resolve, reject) => {
      const opened = indexedDB.open(INSTALLS, 1);
      opened.onupgradeneeded = () => opened.result.createObjectStore("installs");
      opened.onerror = () => reject(opened.error);
      opened.onsuccess = () => {
        const request = op(opened.result.transaction("installs", mode).objectStore("installs"));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      };
    });
  }
  async function installation() {
    const held = await installs("readonly", (s) => s.get(app));
    if (held) return held;
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    const made = { pair: pair, did: await didOf(pair), data: null, pay: null };
    await installs("readwrite", (s) => s.put(made, app));
    return made;
  }
  const remember = (install) => installs("readwrite", (s) => s.put(install, app));

  // A consent screen: resolves when the client approves, rejects when they decline.
  function ask(screenId, approveId, declineId) {
    const screen = document.getElementById(screenId);
    screen.hidden = false;
    return new Promise((resolve, reject) => {
      document.getElementById(approveId).onclick = () => resolve();
      document.getElementById(declineId).onclick = () => {
        screen.hidden = true;
        reject(new Refusal("consent_declined", "the client did not consent"));
      };
    });
  }

  // The limits the client set on the payment screen, as a consent's paymentLimits.
  function chosenLimits() {
    const amount = (id) => Number(document.getElementById(id).value).toFixed(2);
    return { currency: "GBP", maxPerPayment: amount("limit-payment"), maxPerPeriod: amount("limit-month"), period: "Month" };
  }

  // Asks the client (data, or payments within limits), has the bank prepare the consent
  // for the client's browser key and this installation's key, signs it, and keeps its id.
  async function grant(install, kind) {
    const screen = kind === "pay" ? "payment-screen" : "consent-screen";
    const status = kind === "pay" ? "payment-status" : "consent-status";
    if (kind === "pay") await ask(screen, "payment-approve", "payment-decline");
    else await ask(screen, "consent-approve", "consent-decline");
    say(status, "Signing with this browser's key...");
    const client = await keyPair();
    const did = await didOf(client);
    const base = `/portal/apps/${encodeURIComponent(app)}/${encodeURIComponent(version)}/consent`;
    const asked = { app: app, did: did, node: node, proofKey: install.did, version: version };
    const proof = await statement(client, "miniapp-consent-prepare", asked);
    const body = { did: did, proofKey: install.did, proof: proof };
    if (kind === "pay") body.paymentLimits = chosenLimits();
    try {
      const prepared = await post(`${base}/prepare`, body);
      const signature = b64url(await sign(client, fromB64url(prepared.message)));
      const done = await post(`${base}/complete`, { credential: prepared.credential, signature: signature });
      install[kind] = done.consentId;
      await remember(install);
      document.getElementById(screen).hidden = true;
      say("host-status", "The app may now use what you agreed to here.");
    } catch (error) {
      say(status, String(error.message || error));
      throw new Refusal("consent_failed", String(error.message || error));
    }
  }

  // A DPoP-shaped proof for one call under `token`, signed by the installation's key.
  async function proofFor(install, token, method, url) {
    const header = { typ: "dpop+jwt", alg: "EdDSA", kid: `${install.did}#${install.did.slice(8)}` };
    const ath = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    const claims = {
      jti: b64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method,
      htu: url,
      iat: Math.floor(Date.now() / 1000),
      ath: b64url(ath),
    };
    const encode = (value) => b64url(new TextEncoder().encode(JSON.stringify(value)));
    const input = `${encode(header)}.${encode(claims)}`;
    const signature = await sign(install.pair, new TextEncoder().encode(input));
    return `${input}.${b64url(signature)}`;
  }

  // Consents that no longer work are forgotten, so the next call asks again.
  const ENDED = ["consent_revoked", "consent_expired", "consent_unknown", "consent_not_yet_valid"];

  // One call to the unified API under this installation's `kind` of consent ("data" or
  // "pay"), asking for it first when there is none.
  async function callApi(kind, method, path, query, payload) {
    const install = await installation();
    if (!install[kind]) await grant(install, kind);
    const token = install[kind];
    const url = location.origin + path;
    const headers = {
      authorization: `ConsentNet ${token}`,
      dpop: await proofFor(install, token, method, url),
      "x-consentnet-app-version": version,
    };
    const init = { method: method, headers: headers };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["x-idempotency-key"] = b64url(crypto.getRandomValues(new Uint8Array(18)));
      init.body = JSON.stringify(payload(token));
    }
    const response = await fetch(url + (query || ""), init);
    const body = await response.json().catch(() => ({}));
    if (response.ok) return body;
    // OBIE error bodies carry consentnet's specific code in `Code`.
    const code = body.Code || `http_${response.status}`;
    if (ENDED.includes(code)) {
      install[kind] = null;
      await remember(install);
    }
    throw new Refusal(code, body.Message || "");
  }

  const read = (path, query) => callApi("data", "GET", API + path, query);

  // A domestic payment from the client's account to the creditor the app names.
  function payment(p) {
    const id = b64url(crypto.getRandomValues(new Uint8Array(12)));
    return (consent) => {
      const initiation = {
        InstructionIdentification: id,
        EndToEndIdentification: id,
        InstructedAmount: { Amount: String(p.amount), Currency: "GBP" },
        CreditorAccount: {
          SchemeName: "UK.OBIE.SortCodeAccountNumber",
          Identification: String(p.creditorAccount || ""),
          Name: String(p.creditorName || ""),
        },
        RemittanceInformation: { Unstructured: [String(p.reference || "").slice(0, 140)] },
      };
      if (p.fromAccount) initiation.DebtorAccount = { Identification: String(p.fromAccount) };
      return { Data: { ConsentId: consent, Initiation: initiation }, Risk: {} };
    };
  }

  const account = (params) => encodeURIComponent(String(params.accountId || ""));
  // Each method, the permissions of which the bank must allow one, and what it does.
  const methods = {
    info: [[], async () => ({ app: app, version: version, operations: operations })],
    accounts: [["ReadAccountsBasic", "ReadAccountsDetail"], () => read("/accounts")],
    balances: [["ReadBalances"], (p) => read(`/accounts/${account(p)}/balances`)],
    transactions: [
      ["ReadTransactionsBasic", "ReadTransactionsDetail"],
      (p) => {
        const range = new URLSearchParams();
        if (p.from) range.set("fromBookingDateTime", `${p.from}T00:00:00Z`);
        if (p.to) range.set("toBookingDateTime", `${p.to}T23:59:59Z`);
        const query = range.toString();
        return read(`/accounts/${account(p)}/transactions`, query ? `?${query}` : "");
      },
    ],
    pay: [
      ["CreateDomesticPayments"],
      (p) => callApi("pay", "POST", "/open-banking/v4.0/pisp/domestic-payments", "", payment(p)),
    ],
  };

  async function perform(method, params) {
    if (!Object.prototype.hasOwnProperty.call(methods, method)) {
      throw new Refusal("unknown_method", "the bridge has no method " + method);
    }
    const [needs, run] = methods[method];
    if (needs.length > 0 && !needs.some((p) => operations.includes(p))) {
      throw new Refusal("operation_not_allowed", `this bank does not allow this app to use ${method}`);
    }
    return run(params);
  }

  // The frame gets its port once, whichever comes first: its load event, or the SDK's
  // hello (sent when the SDK starts, in case it runs before this script listens).
  let loads = 0;
  let given = false;
  function givePort() {
    if (given || !frame.isConnected) return;
    given = true;
    const channel = new MessageChannel();
    channel.port1.onmessage = async function (event) {
      const request = event.data || {};
      try {
        const result = await perform(String(request.method), request.params || {});
        channel.port1.postMessage({ id: request.id, result: result });
      } catch (error) {
        const code = error instanceof Refusal ? error.code : "bridge_failed";
        const message = error instanceof Refusal ? error.message : String(error);
        channel.port1.postMessage({ id: request.id, error: { code: code, message: message } });
      }
    };
    // The frame's origin is opaque, so no origin can be named: the message goes to
    // this frame's window only.
    frame.contentWindow.postMessage({ type: "consentnet-bridge", version: 1 }, "*", [channel.port2]);
  }
  window.addEventListener("message", function (event) {
    const data = event.data || {};
    if (event.source === frame.contentWindow && data.type === "consentnet-hello") givePort();
  });
  frame.addEventListener("load", function () {
    loads += 1;
    if (loads > 1) {
      // The frame left the approved bundle's page: it gets no bridge again.
      frame.remove();
      say("host-status", "The app left its approved page and was stopped.");
      return;
    }
    givePort();
  });
})();
