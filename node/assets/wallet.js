// consentnet's browser wallet: one Ed25519 key made by WebCrypto as non-extractable (its
// private half can sign but can never be read out), kept in this browser's IndexedDB.
// It links the key's DID at a bank, signs in, and approves consent requests; every
// signature is made here and only signatures leave the page.
"use strict";

const DB_NAME = "consentnet-wallet";
const STORE = "keys";
const KEY_ID = "default";
const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function storeOp(mode, op) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const request = op(db.transaction(STORE, mode).objectStore(STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

const loadKey = () => storeOp("readonly", (s) => s.get(KEY_ID));

async function keyPair() {
  const held = await loadKey();
  if (held) return held;
  const made = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  await storeOp("readwrite", (s) => s.put(made, KEY_ID));
  return made;
}

function base58(bytes) {
  const digits = [0];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let text = "";
  for (const byte of bytes) {
    if (byte !== 0) break;
    text += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) text += B58[digits[i]];
  return text;
}

// did:key of an Ed25519 public key: multicodec 0xed01, then base58btc ("z").
async function didOf(pair) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const prefixed = new Uint8Array(2 + raw.length);
  prefixed.set([0xed, 0x01]);
  prefixed.set(raw, 2);
  return "did:key:z" + base58(prefixed);
}

function b64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64url(text) {
  const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(plain, (c) => c.charCodeAt(0));
}

async function sign(pair, bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes));
}

// A consentnet signed statement: "consentnet/<domain>/v1\n" then the canonical JSON of
// an object of plain strings (keys sorted, no whitespace: RFC 8785 for such objects).
async function statement(pair, domain, value) {
  const sorted = {};
  for (const name of Object.keys(value).sort()) sorted[name] = value[name];
  const text = `consentnet/${domain}/v1\n` + JSON.stringify(sorted);
  return b64url(await sign(pair, new TextEncoder().encode(text)));
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer.message || answer.error_description || answer.error || `HTTP ${response.status}`);
  }
  return answer;
}

function say(text, isError) {
  const status = document.getElementById("browser-key-status");
  status.textContent = text;
  status.className = isError ? "error" : "done";
}

async function act(box, pair, did) {
  const data = box.dataset;
  if (data.action === "sign-in") {
    const value = { challenge: data.challenge, did, node: data.node };
    const proof = await statement(pair, "portal-sign-in", value);
    await post("/portal/sign-in", { challenge: data.challenge, did, proof });
    say("Signed in.", false);
    location.reload();
  } else if (data.action === "link") {
    const code = document.getElementById("link-code").value.trim();
    const value = { bank: data.node, code, did };
    const answer = await post("/v1/links", { code, did, proof: await statement(pair, "account-link", value) });
    const accounts = (answer.accounts || []).map((a) => a.account_id).join(", ");
    say(`Linked to ${accounts}.`, false);
  } else if (data.action === "approve") {
    const value = { did, node: data.node, request: data.request };
    const proof = await statement(pair, "oauth-prepare", value);
    const prepared = await post(`/oauth/requests/${data.request}/prepare`, { did, proof });
    const signature = b64url(await sign(pair, fromB64url(prepared.message)));
    await post(`/oauth/requests/${data.request}/complete`, { credential: prepared.credential, signature });
    say("Approved.", false);
    location.reload();
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("browser-key");
  if (!box) return;
  if (!window.crypto || !crypto.subtle || !window.indexedDB) {
    say("This browser cannot keep a key: use the consentnet wallet instead.", true);
    return;
  }
  // Pages waiting for a decision made elsewhere (the CLI wallet) look again now and then,
  // but not while this browser's key is at work, nor once there is an error to read.
  let busy = false;
  const refresh = Number(box.dataset.refresh || 0);
  const timer = refresh > 0 ? setInterval(() => busy || location.reload(), refresh * 1000) : null;
  // The button works from the first moment; showing the held key's DID can wait.
  document.getElementById("browser-key-button").addEventListener("click", async () => {
    busy = true;
    try {
      const pair = await keyPair();
      const did = await didOf(pair);
      document.getElementById("browser-did").textContent = did;
      await act(box, pair, did);
    } catch (error) {
      if (timer !== null) clearInterval(timer);
      say(String(error && error.message ? error.message : error), true);
    }
    busy = false;
  });
  const held = await loadKey().catch(() => null);
  if (held) document.getElementById("browser-did").textContent = await didOf(held);
});
