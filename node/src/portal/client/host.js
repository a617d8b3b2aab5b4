// consentnet mini-app host: hands the sandboxed frame one end of a MessageChannel and
// answers what it asks through it. The frame has an opaque origin and no network; this
// bridge is its only way to the bank, and it refuses any operation the bank did not
// allow the app version.
"use strict";
(function () {
  const host = document.getElementById("host");
  const frame = document.getElementById("miniapp");
  const statusLine = document.getElementById("host-status");
  if (!host || !frame) return;
  const app = host.dataset.app;
  const version = host.dataset.version;
  const operations = JSON.parse(host.dataset.operations || "[]");

  function say(text) {
    statusLine.textContent = text;
  }

  // What each bridge method needs the bank to allow (any one of the permissions).
  const needs = {
    info: [],
  };

  async function perform(method, params) {
    if (!(method in needs)) {
      throw { code: "unknown_method", message: "the bridge has no method " + method };
    }
    const wanted = needs[method];
    if (wanted.length > 0 && !wanted.some((p) => operations.includes(p))) {
      throw {
        code: "operation_not_allowed",
        message: "this bank does not allow this app to " + method,
      };
    }
    if (method === "info") {
      return { app: app, version: version, operations: operations };
    }
    throw { code: "unknown_method", message: "the bridge has no method " + method };
  }

  let loads = 0;
  frame.addEventListener("load", function () {
    loads += 1;
    if (loads > 1) {
      // The frame left the approved bundle's page: it gets no bridge again.
      frame.remove();
      say("The app left its approved page and was stopped.");
      return;
    }
    const channel = new MessageChannel();
    channel.port1.onmessage = async function (event) {
      const request = event.data || {};
      try {
        const result = await perform(String(request.method), request.params || {});
        channel.port1.postMessage({ id: request.id, result: result });
      } catch (error) {
        const code = (error && error.code) || "bridge_failed";
        const message = (error && error.message) || String(error);
        channel.port1.postMessage({ id: request.id, error: { code: code, message: message } });
      }
    };
    // The frame's origin is opaque, so no origin can be named: the message goes to
    // this frame's window only.
    frame.contentWindow.postMessage({ type: "consentnet-bridge", version: 1 }, "*", [channel.port2]);
  });
})();
