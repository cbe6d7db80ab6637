// The prediction page: draw or upload, POST /api/predict, show the top-k bars and the Grad-CAM overlay.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  let models = [];
  let current = null;
  let lastInput = null; // () => Promise<{body, headers}> for the input shown now
  let pending = 0;

  function clearCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  // ------------------------------------------------------------------------------------------ drawing
  let drawing = false;
  function pos(ev) {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
  }
  canvas.addEventListener("pointerdown", (ev) => {
    drawing = true;
    canvas.setPointerCapture(ev.pointerId);
    const [x, y] = pos(ev);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 0.01, y);
    ctx.stroke();
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    const [x, y] = pos(ev);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const stop = () => {
    if (!drawing) return;
    drawing = false;
    lastInput = drawnInput;
    if ($("live").checked) predict();
  };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  $("clear").addEventListener("click", () => {
    clearCanvas();
    lastInput = null;
    showEmpty();
  });

  function setupPen() {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 34;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  // The strokes' bounding box, made square with a margin (digit datasets centre their digits so), scaled
  // down in halving steps (smooth, like the antialiased datasets) to the model's source size.
  function drawnInput() {
    const img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let x0 = canvas.width, y0 = canvas.height, x1 = -1, y1 = -1;
    for (let y = 0; y < canvas.height; y++) {
      for (let x = 0; x < canvas.width; x++) {
        if (img[4 * (y * canvas.width + x)] > 20) {
          if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
        }
      }
    }
    if (x1 < 0) { x0 = 0; y0 = 0; x1 = canvas.width - 1; y1 = canvas.height - 1; }
    const shape = (current && (current.source_shape || current.input_shape)) || [1, 28, 28];
    const [th, tw] = [shape[1], shape[2]];
    // MNIST-style digits sit in a 20x20 box of their 28x28 frame; scikit-learn's 8x8 digits fill theirs.
    const side = Math.max(x1 - x0 + 1, y1 - y0 + 1) * (Math.max(th, tw) >= 20 ? 1.4 : 1.12);
    const cx = (x0 + x1 + 1) / 2, cy = (y0 + y1 + 1) / 2;
    let src = document.createElement("canvas");
    src.width = src.height = Math.ceil(side);
    const sctx = src.getContext("2d");
    sctx.fillStyle = "#000";
    sctx.fillRect(0, 0, src.width, src.height);
    sctx.drawImage(canvas, cx - side / 2, cy - side / 2, side, side, 0, 0, side, side);
    while (src.width / 2 >= tw && src.height / 2 >= th) {
      const half = document.createElement("canvas");
      half.width = Math.ceil(src.width / 2);
      half.height = Math.ceil(src.height / 2);
      const hctx = half.getContext("2d");
      hctx.imageSmoothingQuality = "high";
      hctx.drawImage(src, 0, 0, half.width, half.height);
      src = half;
    }
    const out = document.createElement("canvas");
    out.width = tw;
    out.height = th;
    const octx = out.getContext("2d");
    octx.imageSmoothingQuality = "high";
    octx.drawImage(src, 0, 0, tw, th);
    return new Promise((resolve) => out.toBlob((blob) => {
      const fd = new FormData();
      fd.append("file", blob, "drawing.png");
      resolve({ body: fd });
    }, "image/png"));
  }

  // ------------------------------------------------------------------------------------------- upload
  $("file").addEventListener("change", () => {
    const f = $("file").files[0];
    if (!f) return;
    const prev = $("preview");
    if (/\.npy$/i.test(f.name)) { prev.hidden = true; } else { prev.src = URL.createObjectURL(f); prev.hidden = false; }
    lastInput = () => { const fd = new FormData(); fd.append("file", f, "upload"); return Promise.resolve({ body: fd }); };
    predict();
  });

  // ------------------------------------------------------------------------------------------- text
  function textInput() {
    const text = $("text").value;
    return Promise.resolve({ body: JSON.stringify({ text }), headers: { "Content-Type": "application/json" } });
  }
  $("send-text").addEventListener("click", () => {
    if (!$("text").value.trim()) return;
    lastInput = textInput;
    predict();
  });

  function tab(which) {
    $("tab-draw").classList.toggle("active", which === "draw");
    $("tab-upload").classList.toggle("active", which === "upload");
    $("draw-pane").hidden = which !== "draw";
    $("upload-pane").hidden = which !== "upload";
    $("text-pane").hidden = which !== "text";
    // Text models take text only; image models never show the text box.
    $("tab-draw").hidden = $("tab-upload").hidden = which === "text";
  }
  $("tab-draw").addEventListener("click", () => tab("draw"));
  $("tab-upload").addEventListener("click", () => tab("upload"));

  // ------------------------------------------------------------------------------------------ results
  function showEmpty() {
    $("label").textContent = "\u2013";
    $("prob").textContent = "";
    $("bars").replaceChildren();
    $("gradcam").hidden = true;
    $("error").textContent = "";
  }

  function show(result) {
    const preds = result.predictions;
    $("label").textContent = preds.length ? preds[0].label : "\u2013";
    $("prob").textContent = preds.length ? cnnkit.pct(preds[0].probability) : "";
    $("bars").replaceChildren(...preds.map((p, i) => {
      const bar = cnnkit.el("div", { class: "bar" + (i === 0 ? " top" : "") });
      bar.style.width = Math.max(0.5, 100 * p.probability).toFixed(2) + "%";
      return cnnkit.el("div", { class: "bar-row", "data-index": String(p.index) },
        cnnkit.el("span", { class: "bar-label", text: p.label }),
        cnnkit.el("span", { class: "bar-track" }, bar),
        cnnkit.el("span", { class: "bar-value", text: cnnkit.pct(p.probability) }));
    }));
    const cam = $("gradcam");
    if (result.gradcam) { cam.src = result.gradcam; cam.hidden = false; } else { cam.hidden = true; }
    $("error").textContent = "";
    document.body.dataset.predictions = String(Number(document.body.dataset.predictions || 0) + 1);
  }

  async function predict() {
    if (!lastInput || !current) return;
    const ticket = ++pending;
    const { body, headers } = await lastInput();
    const params = new URLSearchParams({ model: current.name, k: $("k").value });
    if ($("explain").checked && current.gradcam) params.set("explain", "gradcam");
    try {
      const result = await cnnkit.json("/api/predict?" + params, { method: "POST", body, headers: headers || {} });
      if (ticket === pending) show(result);
    } catch (e) {
      if (ticket === pending) { $("error").textContent = e.message; }
    }
  }
  $("explain").addEventListener("change", predict);
  $("k").addEventListener("change", predict);

  // ------------------------------------------------------------------------------------------- models
  function choose(name) {
    current = models.find((m) => m.name === name) || models[0] || null;
    if (!current) return;
    const arch = current.architecture ? current.architecture + ", " : "";
    $("explain").disabled = !current.gradcam;
    if (!current.gradcam) $("explain").checked = false;
    if (current.kind === "text") {
      $("model-info").textContent = arch + current.classes.length + " classes, " + current.input_shape[0] + " tokens";
      const wasImage = lastInput !== textInput;
      tab("text");
      if (wasImage) { lastInput = $("text").value.trim() ? textInput : null; showEmpty(); }
      predict();
      return;
    }
    if (lastInput === textInput) { lastInput = null; showEmpty(); }
    const src = current.source_shape || current.input_shape;
    $("source-size").textContent = src.slice(1).join("\u00d7") + (src[0] === 1 ? " gray" : " colour");
    $("model-info").textContent = arch + current.classes.length + " classes, input " + current.input_shape.join("\u00d7");
    // Gray models with small inputs are the ones drawing suits; others open on the upload tab.
    tab(src[0] === 1 && Math.max(src[1], src[2]) <= 64 ? "draw" : "upload");
    predict();
  }
  $("model").addEventListener("change", () => choose($("model").value));

  async function init() {
    clearCanvas();
    setupPen();
    try {
      const info = await cnnkit.json("/api/models");
      models = info.models;
      $("dash-link").hidden = !info.dashboard;
      $("model").replaceChildren(...models.map((m) => cnnkit.el("option", { value: m.name, text: m.name })));
      if (!models.length) { $("error").textContent = "this server holds no model; start it with cnnkit serve RUN_DIR"; return; }
      choose(models[0].name);
      document.body.dataset.ready = "1";
    } catch (e) {
      $("error").textContent = e.message;
    }
  }
  init();
})();
