// Shared by both pages: the API token and fetch helpers. Strings from the server are only ever put into
// the page as text (textContent), never as markup; the Content-Security-Policy allows no inline script.
"use strict";

const cnnkit = (() => {
  const KEY = "cnnkit-serve-token";
  // http://HOST:PORT/#token=TOKEN: the fragment never reaches the server's logs; keep it for this tab only.
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }

  function headers() {
    const t = sessionStorage.getItem(KEY);
    return t ? { Authorization: "Bearer " + t } : {};
  }

  async function request(path, options = {}) {
    const opts = Object.assign({}, options, { headers: Object.assign({}, options.headers || {}, headers()) });
    let res = await fetch(path, opts);
    if (res.status === 401) {
      const t = window.prompt("This server needs its token (cnnkit serve --token / CNNKIT_SERVE_TOKEN):");
      if (t) {
        sessionStorage.setItem(KEY, t);
        opts.headers = Object.assign({}, options.headers || {}, headers());
        res = await fetch(path, opts);
      }
    }
    return res;
  }

  async function json(path, options) {
    const res = await request(path, options);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || ("HTTP " + res.status));
    return body;
  }

  async function blobUrl(path) {
    const res = await request(path);
    if (!res.ok) throw new Error("HTTP " + res.status);
    return URL.createObjectURL(await res.blob());
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function pct(p) { return (100 * p).toFixed(1) + "%"; }

  return { request, json, blobUrl, el, pct };
})();
