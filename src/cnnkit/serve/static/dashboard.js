// The runs dashboard: a sortable table of run folders, learning curves from metrics.jsonl (one run, or
// several overlaid), and per run its summary, config, plots, confusion matrix and misclassified images.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
  let runs = [];
  let sortKey = "started";
  let sortDesc = true;
  let selected = null;          // the run shown in detail
  const compare = new Set();    // runs overlaid in the chart
  const metricsCache = new Map();

  function fmtSeconds(s) {
    if (s == null) return "";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  // ------------------------------------------------------------------------------------------ the table
  function renderTable() {
    const sorted = runs.slice().sort((a, b) => {
      const va = a[sortKey], vb = b[sortKey];
      if (va == null && vb == null) return 0;
      if (va == null) return 1;
      if (vb == null) return -1;
      const c = va < vb ? -1 : va > vb ? 1 : 0;
      return sortDesc ? -c : c;
    });
    $("runs").tBodies[0].replaceChildren(...sorted.map((r) => {
      const box = cnnkit.el("input", { type: "checkbox", "aria-label": "compare " + r.id });
      box.checked = compare.has(r.id);
      box.addEventListener("click", (ev) => {
        ev.stopPropagation();
        if (box.checked) compare.add(r.id); else compare.delete(r.id);
        drawChart();
      });
      const epochs = r.epochs == null ? "" : (r.status !== "finished" && r.planned_epochs ? r.epochs + "/" + r.planned_epochs : String(r.epochs));
      const tr = cnnkit.el("tr", { class: r.id === selected ? "selected" : "", "data-id": r.id },
        cnnkit.el("td", {}, box),
        cnnkit.el("td", { text: r.id }), cnnkit.el("td", { text: r.model || "" }), cnnkit.el("td", { text: r.data || "" }),
        cnnkit.el("td", { class: "num", text: epochs }),
        cnnkit.el("td", { class: "num", text: r.test_accuracy == null ? "" : cnnkit.pct(r.test_accuracy) }),
        cnnkit.el("td", { class: "num", text: fmtSeconds(r.seconds) }),
        cnnkit.el("td", {}, cnnkit.el("span", { class: "status " + r.status, text: r.status })));
      tr.addEventListener("click", () => select(r.id));
      return tr;
    }));
  }
  for (const th of document.querySelectorAll("#runs th[data-key]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      sortDesc = key === sortKey ? !sortDesc : ["test_accuracy", "seconds", "epochs"].includes(key);
      sortKey = key;
      renderTable();
    });
  }

  async function loadRuns() {
    try {
      runs = (await cnnkit.json("/api/runs")).runs;
      $("error").textContent = runs.length ? "" : "no run folders under this folder yet";
      renderTable();
      if (!selected && runs.length) {
        const first = runs.slice().sort((a, b) => (b.started || "").localeCompare(a.started || ""))[0];
        await select(first.id);
      }
    } catch (e) {
      $("error").textContent = e.message;
    }
  }
  $("refresh").addEventListener("click", () => { metricsCache.clear(); loadRuns(); if (selected) select(selected); });

  // ------------------------------------------------------------------------------------------ the chart
  async function metricsOf(id) {
    if (!metricsCache.has(id)) {
      const d = await cnnkit.json("/api/run?id=" + encodeURIComponent(id));
      metricsCache.set(id, d);
    }
    return metricsCache.get(id);
  }

  function metricKeys(rowsList) {
    const keys = new Set();
    for (const rows of rowsList) for (const row of rows) for (const [k, v] of Object.entries(row)) {
      if (k !== "epoch" && typeof v === "number") keys.add(k);
    }
    const order = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"];
    return [...keys].sort((a, b) => ((order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99)) || a.localeCompare(b));
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  async function drawChart() {
    const ids = compare.size ? [...compare] : (selected ? [selected] : []);
    const series = [];
    for (const id of ids) {
      try { series.push({ id, rows: (await metricsOf(id)).metrics }); } catch (e) { /* shown in the table */ }
    }
    const keys = metricKeys(series.map((s) => s.rows));
    const sel = $("metric");
    const want = sel.value && keys.includes(sel.value) ? sel.value : (keys.includes("train_loss") ? "train_loss" : keys[0]);
    sel.replaceChildren(...keys.map((k) => cnnkit.el("option", { value: k, text: k })));
    if (want) sel.value = want;
    const chart = $("chart");
    const W = 640, H = 300, L = 56, R = 16, T = 12, B = 36;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "learning curves", class: "curves" });
    const lines = series.map((s, i) => ({
      id: s.id, colour: COLOURS[i % COLOURS.length],
      pts: s.rows.filter((r) => typeof r[want] === "number" && typeof r.epoch === "number").map((r) => [r.epoch, r[want]]),
    })).filter((l) => l.pts.length);
    if (!lines.length) {
      chart.replaceChildren(cnnkit.el("p", { class: "muted", text: ids.length ? "no epochs recorded yet" : "choose a run" }));
      $("legend").replaceChildren();
      return;
    }
    const xs = lines.flatMap((l) => l.pts.map((p) => p[0])), ys = lines.flatMap((l) => l.pts.map((p) => p[1]));
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const y = y0 + (y1 - y0) * i / 4;
      root.append(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }));
      const t = svg("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" });
      t.textContent = Math.abs(y) >= 100 || Math.abs(y) < 0.01 ? y.toPrecision(3) : y.toFixed(3);
      root.append(t);
    }
    const step = Math.max(1, Math.ceil((x1 - x0) / 10));
    for (let x = Math.ceil(x0); x <= x1; x += step) {
      const t = svg("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle", class: "tick" });
      t.textContent = String(x);
      root.append(t);
    }
    const xl = svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "axis" });
    xl.textContent = "epoch";
    root.append(xl);
    for (const l of lines) {
      root.append(svg("polyline", { points: l.pts.map((p) => sx(p[0]) + "," + sy(p[1])).join(" "), stroke: l.colour, class: "line", "data-run": l.id }));
      for (const p of l.pts) root.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: l.colour }));
    }
    // Hover: the nearest epoch's values of every run, in a tooltip.
    const cursor = svg("line", { y1: T, y2: H - B, class: "cursor", visibility: "hidden" });
    const tip = svg("text", { x: L + 8, y: T + 14, class: "tip" });
    root.append(cursor, tip);
    root.addEventListener("mousemove", (ev) => {
      const r = root.getBoundingClientRect();
      const px = (ev.clientX - r.left) * W / r.width;
      const ex = Math.round(x0 + (px - L) / (W - L - R) * (x1 - x0));
      cursor.setAttribute("x1", sx(ex)); cursor.setAttribute("x2", sx(ex)); cursor.setAttribute("visibility", "visible");
      tip.replaceChildren();
      const head = svg("tspan", { x: L + 8, dy: 0 }); head.textContent = "epoch " + ex; tip.append(head);
      for (const l of lines) {
        const p = l.pts.find((q) => q[0] === ex);
        if (!p) continue;
        const s = svg("tspan", { x: L + 8, dy: 14, fill: l.colour });
        s.textContent = l.id + ": " + p[1].toPrecision(4);
        tip.append(s);
      }
    });
    root.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.replaceChildren(); });
    chart.replaceChildren(root);
    $("legend").replaceChildren(...lines.map((l) => {
      const sw = cnnkit.el("span", { class: "swatch" }); sw.style.background = l.colour;
      return cnnkit.el("span", { class: "legend-item" }, sw, l.id);
    }));
    chart.dataset.lines = String(lines.length);
  }
  $("metric").addEventListener("change", drawChart);

  // ----------------------------------------------------------------------------------------- the detail
  async function select(id) {
    selected = id;
    renderTable();
    drawChart();
    const d = await metricsOf(id);
    $("detail").hidden = false;
    $("detail-title").textContent = d.run.id;
    $("config").textContent = d.config || "(no config.yaml)";
    const keys = ["status", "model", "data", "task", "epochs", "test_accuracy", "test_loss", "best_epoch", "wall_seconds", "num_params", "device", "precision", "started"];
    const rows = [];
    for (const k of keys) {
      const v = k in d.summary ? d.summary[k] : d.run[k];
      if (v == null) continue;
      rows.push(cnnkit.el("tr", {}, cnnkit.el("th", { text: k }), cnnkit.el("td", { text: typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(5) : String(v) })));
    }
    $("summary").replaceChildren(...rows);
    const plots = $("plots");
    plots.replaceChildren();
    for (const name of d.run.plots) {
      const img = cnnkit.el("img", { alt: name, class: "plot" });
      plots.append(cnnkit.el("figure", {}, img, cnnkit.el("figcaption", { text: name })));
      cnnkit.blobUrl("/api/run/plot?id=" + encodeURIComponent(id) + "&name=" + encodeURIComponent(name)).then((u) => { img.src = u; }, () => {});
    }
    loadErrors(id);
  }

  async function loadErrors(id) {
    $("confusion").replaceChildren();
    $("mistakes").replaceChildren();
    const run = runs.find((r) => r.id === id);
    if (run && !run.has_model) { $("errors-status").textContent = "(no model yet)"; return; }
    $("errors-status").textContent = "(evaluating\u2026)";
    try {
      const e = await cnnkit.json("/api/run/errors?limit=24&id=" + encodeURIComponent(id));
      if (selected !== id) return;
      $("errors-status").textContent = `${e.count} images, accuracy ${cnnkit.pct(e.accuracy)}`;
      const max = Math.max(1, ...e.confusion.flat());
      const head = cnnkit.el("tr", {}, cnnkit.el("th", {}), ...e.class_names.map((n) => cnnkit.el("th", { text: n })));
      const body = e.confusion.map((row, i) => cnnkit.el("tr", {}, cnnkit.el("th", { text: e.class_names[i] }), ...row.map((v, j) => {
        const td = cnnkit.el("td", { text: String(v), class: i === j ? "diag" : "" });
        td.style.setProperty("--a", (v / max).toFixed(3));
        return td;
      })));
      $("confusion").replaceChildren(head, ...body);
      $("mistakes").replaceChildren(...e.misclassified.map((m) => cnnkit.el("figure", { class: "mistake" },
        cnnkit.el("img", { src: m.image, alt: "test image " + m.index }),
        cnnkit.el("figcaption", {}, cnnkit.el("b", { text: "true " + m.label }),
          ...m.top.map((t) => cnnkit.el("span", { class: "top", text: t.label + " " + cnnkit.pct(t.probability) }))))));
      if (!e.misclassified.length) $("mistakes").append(cnnkit.el("p", { class: "muted", text: "none: every test image is right" }));
    } catch (err) {
      if (selected === id) $("errors-status").textContent = "(" + err.message + ")";
    }
  }

  // While a run is training, its row and curves refresh every few seconds.
  async function follow() {
    const live = runs.filter((r) => r.status === "running").map((r) => r.id);
    if (live.length) {
      for (const id of live) metricsCache.delete(id);
      await loadRuns();
      if (live.includes(selected) || live.some((id) => compare.has(id))) drawChart();
    }
    setTimeout(follow, 5000);
  }

  loadRuns().then(() => { document.body.dataset.ready = "1"; setTimeout(follow, 5000); });
})();
