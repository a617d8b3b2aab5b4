// consentnet mini-app SDK. Copy this file into your bundle and load it before your own
// scripts. A mini-app runs in the bank's portal in a sandboxed frame with no network of
// its own: every call goes through the host's bridge, which asks the client's consent
// the first time, checks what the bank allows your app, and calls the bank's unified
// Open Banking API for you. Each method returns a Promise; a refusal rejects with
// {code, message}. See docs/MINIAPPS.md.
"use strict";
const consentnet = (function () {
  let port = null;
  let next = 1;
  const pending = new Map();
  const ready = new Promise(function (resolve) {
    window.addEventListener("message", function (event) {
      const data = event.data || {};
      if (port || event.source !== window.parent || data.type !== "consentnet-bridge") return;
      port = event.ports[0];
      port.onmessage = function (answer) {
        const { id, result, error } = answer.data || {};
        const waiting = pending.get(id);
        if (!waiting) return;
        pending.delete(id);
        if (error) waiting.reject(error);
        else waiting.resolve(result);
      };
      resolve();
    });
  });

  // Ask for the port too, in case the host's page was not listening yet when this frame
  // loaded: again every 200 ms for 10 s until it comes. The host answers once.
  let asks = 0;
  const hello = () => {
    if (port || asks++ >= 50) return;
    window.parent.postMessage({ type: "consentnet-hello" }, "*");
    setTimeout(hello, 200);
  };
  hello();

  async function call(method, params) {
    await ready;
    return new Promise(function (resolve, reject) {
      const id = next++;
      pending.set(id, { resolve: resolve, reject: reject });
      port.postMessage({ id: id, method: method, params: params || {} });
    });
  }

  return {
    /** The app, its version and the operations the bank allows it. */
    info: () => call("info"),
    /** The client's accounts at this bank (OBIE account resources). */
    accounts: () => call("accounts"),
    /** The balances of one account. */
    balances: (accountId) => call("balances", { accountId: accountId }),
    /** The transactions of one account between two dates (YYYY-MM-DD). */
    transactions: (accountId, from, to) =>
      call("transactions", { accountId: accountId, from: from, to: to }),
    /** A domestic payment, within the limits the client consented to. */
    pay: (payment) => call("pay", payment),
  };
})();
