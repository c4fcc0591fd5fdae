/* conv3d explorer, the page: the sliders, the slices, the products, the formula and NumPy
 * lines, the step slider and Play/Pause, hovering, and window.explorer.state() for tests.
 * The arithmetic is in convmath.js, the 3D drawing in view3d.js.
 *
 * Nothing is loaded from anywhere: the data are the worked cube (embedded by the Python side) or
 * small integers from a fixed formula, so a test can recompute every number with conv3d.
 */
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("explorer-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var M = window.ConvMath, KD_COLOURS = window.Scene3D.KD_COLOURS, AXES = M.AXES;
  var fmt = M.fmt, paren = M.paren, range = M.range, same = M.same, build = M.build, inside = M.inside;
  var taps = M.taps, gradTerms = M.gradTerms, finish = M.finish, samePadding = M.samePadding;
  var formulaInput = M.formulaInput, formulaWeight = M.formulaWeight, shapeOf = M.shapeOf;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  var S = {};           // slider settings (explore mode)
  var G = null;         // the problem: sizes, padding, data, output
  var sel = [0, 0, 0, 0];   // forward: output voxel (k, od, oh, ow)
  var bsel = [0, 0, 0, 0];  // backward: input voxel (c, d, h, w)
  var mode = "forward";
  var timer = null;
  var view = { yaw: -0.62, pitch: 0.42 };
  var cells = { input: [], weights: [], output: [] };  // [td, index tuple] for re-highlighting

  function cubeFits() { return S.input === 4 && S.kernel === 3 && S.channels === 1 && S.outchannels === 1; }

  function readSliders() {
    ["input", "kernel", "stride", "dilation", "channels", "outchannels"].forEach(function (n) {
      S[n] = parseInt($("s-" + n).value, 10);
    });
    var p = parseInt($("s-padding").value, 10);
    S.padding = p === 4 ? "same" : p;
    S.data = $("s-data").value;
    if (S.data === "cube" && !cubeFits()) { S.data = "formula"; $("s-data").value = "formula"; }
    $("s-data").options[0].disabled = !cubeFits();
  }

  function makeProblem() {
    if (CFG.fixed) {
      var f = CFG.fixed;
      var xs = shapeOf(f.x), ws = shapeOf(f.w);
      return finish({ C: xs[0], K: ws[0], size: xs.slice(1), kernel: ws.slice(2), stride: f.stride,
                      dilation: f.dilation, pad: f.padding, x: f.x, w: f.w, b: f.b,
                      paddingMode: f.padding_text, source: f.source, published: f.published });
    }
    var n = S.input, k = S.kernel, s = S.stride, d = S.dilation, C = S.channels, K = S.outchannels;
    var size = [n, n, n], kernel = [k, k, k];
    var pad = size.map(function (i) { return S.padding === "same" ? samePadding(i, k, s, d) : [S.padding, S.padding]; });
    var x, w, source, published = null;
    if (S.data === "cube") {
      x = [CFG.cube.input]; w = [[CFG.cube.filter]];
      source = "the worked 4x4x4 cube and its 3x3x3 filter (conv3d/data/cube4x4x4.json)";
      published = CFG.cube.published;
    } else {
      x = build([C, n, n, n], function (i) { return formulaInput(i[0], i[1], i[2], i[3]); });
      w = build([K, C, k, k, k], function (i) { return formulaWeight(i[0], i[1], i[2], i[3], i[4]); });
      source = "formula: x[c,d,h,w] = (1 + 3d + 5h + 7w + 11c) mod 10, " +
               "w[k,c,a,b,e] = ((2a + 3b + 5e + 7c + 11k) mod 5) - 2, bias 0";
    }
    return finish({ C: C, K: K, size: size, kernel: kernel, stride: [s, s, s], dilation: [d, d, d],
                    pad: pad, x: x, w: w, b: range(K).map(function () { return 0; }),
                    paddingMode: String(S.padding), source: source, published: published });
  }

  function steps() { return G.error ? 0 : G.K * G.out[0] * G.out[1] * G.out[2]; }
  function stepOf(at) { return ((at[0] * G.out[0] + at[1]) * G.out[1] + at[2]) * G.out[2] + at[3]; }
  function atOf(s) {
    var ow = s % G.out[2]; s = (s - ow) / G.out[2];
    var oh = s % G.out[1]; s = (s - oh) / G.out[1];
    var od = s % G.out[0]; return [(s - od) / G.out[0], od, oh, ow];
  }
  function clamp(v, lim) { return v.map(function (x, i) { return Math.max(0, Math.min(x, lim[i] - 1)); }); }

  // ---- building the page ----------------------------------------------------------------------
  function rebuild() {
    if (!CFG.fixed) { readSliders(); }
    G = makeProblem();
    if (!CFG.fixed) {
      $("v-input").textContent = S.input; $("v-kernel").textContent = S.kernel;
      $("v-stride").textContent = S.stride; $("v-dilation").textContent = S.dilation;
      $("v-channels").textContent = S.channels; $("v-outchannels").textContent = S.outchannels;
      $("v-padding").textContent = S.padding === "same" ? "same (Keras rule)" : S.padding;
    }
    if (!G.error) {
      sel = clamp(sel, [G.K].concat(G.out));
      bsel = clamp(bsel, [G.C].concat(G.size));
    }
    $("step").max = Math.max(steps() - 1, 0);
    buildSlices();
    refresh();
  }

  function gridTable(kind, rows, cols, cell) {
    var t = el("table", "grid " + kind);
    for (var r = 0; r < rows; r++) {
      var tr = el("tr");
      for (var c = 0; c < cols; c++) { tr.appendChild(cell(r, c)); }
      t.appendChild(tr);
    }
    return t;
  }

  function buildSlices() {
    var box = $("slices");
    box.innerHTML = "";
    cells = { input: [], weights: [], output: [] };
    if (G.error) { return; }
    var P = G;
    // INPUT: one row per channel, every padded depth slice
    for (var c = 0; c < P.C; c++) {
      box.appendChild(el("div", "rowlabel", "INPUT x, channel c=" + c + " (grey: zero padding; " +
                         "indices are the input's own, padding cells have indices outside 0.." + "size-1)"));
      var row = el("div", "row");
      for (var dp = -P.pad[0][0]; dp < P.size[0] + P.pad[0][1]; dp++) {
        var sl = el("div", "slice");
        sl.appendChild(el("div", "cap", "d=" + dp + (dp < 0 || dp >= P.size[0] ? " (padding)" : "")));
        sl.appendChild(gridTable("input", P.size[1] + P.pad[1][0] + P.pad[1][1], P.size[2] + P.pad[2][0] + P.pad[2][1],
          (function (c, d) { return function (r, q) {
            var i = [d, r - P.pad[1][0], q - P.pad[2][0]];
            var pad = !inside(P, i);
            var td = el("td", pad ? "pad" : "", pad ? "0" : fmt(P.x[c][i[0]][i[1]][i[2]]));
            td.dataset.c = c; td.dataset.d = i[0]; td.dataset.h = i[1]; td.dataset.w = i[2];
            td.title = "x[" + [c].concat(i).join(", ") + "]" + (pad ? " (padding)" : "");
            if (!pad) {
              td.addEventListener("mouseenter", function () { if (mode === "backward") { pickInput([c].concat(i)); } });
              td.addEventListener("click", function () { setMode("backward"); pickInput([c].concat(i)); });
            }
            cells.input.push([td, [c].concat(i), pad]);
            return td;
          }; })(c, dp)));
        row.appendChild(sl);
      }
      box.appendChild(row);
    }
    // WEIGHTS: one row per (k, c)
    for (var k = 0; k < P.K; k++) {
      for (c = 0; c < P.C; c++) {
        box.appendChild(el("div", "rowlabel", "WEIGHTS w[k=" + k + ", c=" + c + "] (slice kd reads the input slice outlined in its colour)"));
        row = el("div", "row");
        for (var kd = 0; kd < P.kernel[0]; kd++) {
          sl = el("div", "slice");
          var cap = el("div", "cap", "kd=" + kd);
          cap.style.color = KD_COLOURS[kd % KD_COLOURS.length];
          cap.style.fontWeight = "bold";
          sl.appendChild(cap);
          sl.style.borderColor = KD_COLOURS[kd % KD_COLOURS.length];
          sl.appendChild(gridTable("weights", P.kernel[1], P.kernel[2], (function (k, c, kd) { return function (r, q) {
            var td = el("td", "", fmt(P.w[k][c][kd][r][q]));
            td.title = "w[" + [k, c, kd, r, q].join(", ") + "]";
            cells.weights.push([td, [k, c, kd, r, q]]);
            return td;
          }; })(k, c, kd)));
          row.appendChild(sl);
        }
        box.appendChild(row);
      }
    }
    // OUTPUT: one row per output channel
    for (k = 0; k < P.K; k++) {
      box.appendChild(el("div", "rowlabel", "OUTPUT y, channel k=" + k + " (hover or click a voxel)"));
      row = el("div", "row");
      for (var od = 0; od < P.out[0]; od++) {
        sl = el("div", "slice");
        sl.appendChild(el("div", "cap", "od=" + od));
        sl.appendChild(gridTable("output", P.out[1], P.out[2], (function (k, od) { return function (r, q) {
          var at = [k, od, r, q];
          var td = el("td", "", fmt(P.y[k][od][r][q]));
          td.dataset.k = k; td.dataset.d = od; td.dataset.h = r; td.dataset.w = q;
          td.title = "y[" + at.join(", ") + "]";
          td.addEventListener("mouseenter", function () { if (mode === "forward") { pickOutput(at); } });
          td.addEventListener("click", function () { setMode("forward"); pickOutput(at); });
          cells.output.push([td, at]);
          return td;
        }; })(k, od)));
        row.appendChild(sl);
      }
      box.appendChild(row);
    }
  }

  function refresh() {
    var P = G;
    $("summary").className = P.error ? "error" : "";
    if (P.error) {
      $("summary").textContent = P.error;
      ["formula", "numpy", "products", "total", "gradline"].forEach(function (id) { $(id).textContent = ""; });
      $("formula").textContent = formulaText(P);
      $("v-step").textContent = "";
      draw3d();
      return;
    }
    var s = stepOf(sel);
    $("step").value = s;
    $("v-step").textContent = (s + 1) + " / " + steps() + "  y[" + sel.join(", ") + "]";
    var tp = taps(P, sel), val = P.y[sel[0]][sel[1]][sel[2]][sel[3]];
    var tapKey = {};
    tp.forEach(function (t) { if (!t.padding) { tapKey[[t.c].concat(t.input).join(",")] = t.kd; } });
    var fw = mode === "forward";
    var gterms = fw ? [] : gradTerms(P, bsel);
    var feeds = {}, btaps = {};
    gterms.forEach(function (t) { feeds[t.output.join(",")] = true; btaps[[t.output[0], bsel[0]].concat(t.tap).join(",")] = true; });
    // padding taps are outlined too, so every one of the k^3 products has its cell
    var padKey = {};
    tp.forEach(function (t) { if (t.padding) { padKey[[t.c].concat(t.input).join(",")] = t.kd; } });
    cells.input.forEach(function (e) {
      var key = e[1].join(","), td = e[0];
      var kd = fw ? (e[2] ? padKey[key] : tapKey[key]) : undefined;
      td.classList.toggle("tap", kd !== undefined);
      td.style.boxShadow = kd !== undefined ? "inset 0 0 0 3px " + KD_COLOURS[kd % KD_COLOURS.length] : "";
      td.classList.toggle("bsel", !fw && same(e[1], bsel));
    });
    cells.weights.forEach(function (e) {
      e[0].classList.toggle("tap", fw && e[1][0] === sel[0]);
      e[0].classList.toggle("btap", !fw && !!btaps[e[1].join(",")]);
    });
    cells.output.forEach(function (e) {
      e[0].classList.toggle("sel", fw && same(e[1], sel));
      e[0].classList.toggle("feeds", !fw && !!feeds[e[1].join(",")]);
    });
    $("formula").textContent = formulaText(P);
    $("numpy").textContent = numpyText(P, sel, val);
    if (fw) {
      $("summary").textContent = "OUTPUT y[" + sel.join(", ") + "] = " + fmt(val) + "   (the sum of the " +
        tp.length + " products input × weight under the coloured outlines" + (P.b[sel[0]] ? " + bias " + fmt(P.b[sel[0]]) : "") + ")";
      var pub = P.published ? P.published[sel[1]][sel[2]][sel[3]] : val;
      if (Math.abs(pub - val) > 1e-9) {
        $("summary").textContent += ". The published figure prints " + fmt(pub) + " here: an arithmetic slip (add up the subtotals yourself).";
      }
      buildProducts(P, tp, val);
      $("gradline").textContent = "";
    } else {
      var g = gterms.reduce(function (a, t) { return a + t.w; }, 0);
      $("summary").textContent = "GRADIENT dL/dx[" + bsel.join(", ") + "] = " + fmt(g) + "   (L = sum of all outputs: " +
        gterms.length + " (output, weight) pairs read this input voxel)";
      $("products").innerHTML = "";
      $("products-title").textContent = "Backward: the outputs (purple) that read x[" + bsel.join(", ") + "], and the weight taps that connect them";
      $("total").textContent = "";
      $("gradline").textContent = gterms.length ?
        "dL/dx[" + bsel.join(", ") + "] = " + gterms.map(function (t) {
          return "dL/dy[" + t.output.join(", ") + "]·w[" + [t.output[0], bsel[0]].concat(t.tap).join(", ") + "]";
        }).join(" + ") + " = " + gterms.map(function (t) { return "1·" + paren(t.w); }).join(" + ") + " = " + fmt(g) :
        "No output reads x[" + bsel.join(", ") + "] (the stride skips it), so its gradient is 0.";
    }
    draw3d();
  }

  function formulaText(P) {
    var lines = ["o = floor((i + 2p - d(k-1) - 1) / s) + 1   (with unequal padding: p_lo + p_hi instead of 2p)"];
    for (var a = 0; a < 3; a++) {
      var i = P.size[a], k = P.kernel[a], s = P.stride[a], d = P.dilation[a], lo = P.pad[a][0], hi = P.pad[a][1];
      var span = i + lo + hi - d * (k - 1) - 1;
      var pads = lo === hi ? "2·" + lo : lo + " + " + hi;
      var line = AXES[a] + ": o = floor((" + i + " + " + pads + " - " + d + "·(" + k + "-1) - 1) / " + s + ") + 1 = floor(" +
                 span + "/" + s + ") + 1 = " + (span < 0 ? "no output" : Math.floor(span / s) + 1);
      if (P.paddingMode === "same") {
        var o = Math.ceil(i / s);
        line += "\n       'same' (Keras): o = ceil(" + i + "/" + s + ") = " + o + ", total padding max((" + o + "-1)·" + s +
                " + " + d + "·(" + k + "-1) + 1 - " + i + ", 0) = " + (lo + hi) + ": " + lo + " before, " + hi + " after";
      }
      lines.push(line);
    }
    lines.push("data: " + P.source);
    return lines.join("\n");
  }

  function numpyText(P, at, val) {
    var sl = [0, 1, 2].map(function (a) {
      var start = at[a + 1] * P.stride[a], stop = start + P.dilation[a] * (P.kernel[a] - 1) + 1;
      return start + ":" + stop + (P.dilation[a] !== 1 ? ":" + P.dilation[a] : "");
    });
    var padded = P.pad.some(function (p) { return p[0] || p[1]; });
    var lines = ["# x: (C, D, H, W), w: (K, C, kD, kH, kW), b: (K,)"];
    var src = "x";
    if (padded) {
      lines.push("x_pad = np.pad(x, ((0, 0), (" + P.pad.map(function (p) { return p.join(", "); }).join("), (") + ")))");
      src = "x_pad";
    }
    lines.push("y[" + at.join(", ") + "] = (" + src + "[:, " + sl.join(", ") + "] * w[" + at[0] + "]).sum() + b[" + at[0] + "]   # = " + fmt(val));
    return lines.join("\n");
  }

  function buildProducts(P, tp, val) {
    var box = $("products");
    box.innerHTML = "";
    $("products-title").textContent = "Products: " + tp.length + " = " + P.kernel.join("×") + (P.C > 1 ? " × " + P.C + " channels" : "") +
      " taps, one table per kernel depth slice, with its subtotal";
    var subs = [];
    for (var c = 0; c < P.C; c++) {
      for (var kd = 0; kd < P.kernel[0]; kd++) {
        var mine = tp.filter(function (t) { return t.c === c && t.kd === kd; });
        var sub = mine.reduce(function (a, t) { return a + t.product; }, 0);
        subs.push(sub);
        var div = el("div", "ptable");
        div.dataset.c = c; div.dataset.kd = kd;
        var cap = el("div", "cap", "c=" + c + ", kd=" + kd + " (input d=" + mine[0].input[0] + ")");
        cap.style.color = KD_COLOURS[kd % KD_COLOURS.length];
        div.appendChild(cap);
        var t = el("table");
        for (var kh = 0; kh < P.kernel[1]; kh++) {
          var tr = el("tr");
          for (var kw = 0; kw < P.kernel[2]; kw++) {
            var q = mine[kh * P.kernel[2] + kw];
            var td = el("td", q.padding ? "padp" : "", fmt(q.x) + "×" + paren(q.w) + "=" + fmt(q.product));
            td.dataset.product = q.product;
            td.title = "x[" + [c].concat(q.input).join(", ") + "]" + (q.padding ? " (padding)" : "") + " × w[" + [sel[0], c, kd, kh, kw].join(", ") + "]";
            tr.appendChild(td);
          }
          t.appendChild(tr);
        }
        div.appendChild(t);
        var s = el("div", "sub", "subtotal " + fmt(sub));
        s.dataset.subtotal = sub;
        div.appendChild(s);
        box.appendChild(div);
      }
    }
    var b = P.b[sel[0]];
    $("total").textContent = "y[" + sel.join(", ") + "] = " + subs.map(paren).join(" + ") + (b ? " + bias " + paren(b) : "") + " = " + fmt(val);
  }

  // ---- the 3D view: an orthographic drawing of the padded input and the output ----------------
  // ---- the 3D view (view3d.js) and hovering over it ------------------------------------------
  var canvas = $("view3d");
  var picks = [];   // projected voxel centres, for hovering: [x, y, kind, index]
  var labelAt = {};  // where the INPUT and OUTPUT labels were drawn (reported by state())
  function draw3d() {
    var r = window.Scene3D.draw(canvas, G, { view: view, forward: mode === "forward", sel: sel, bsel: bsel });
    picks = r.picks; labelAt = r.labels;
  }

  function pickAt(mx, my) {
    var best = null, bd = 14 * 14;
    picks.forEach(function (p) {
      var dd = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
      if (dd < bd) { bd = dd; best = p; }
    });
    return best;
  }
  var drag = null;
  canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, y: e.clientY, moved: false }; });
  window.addEventListener("mouseup", function (e) {
    if (drag && !drag.moved) {
      var r = canvas.getBoundingClientRect(), p = pickAt(e.clientX - r.left, e.clientY - r.top);
      if (p && p[2] === "output") { setMode("forward"); pickOutput(p[3]); }
      if (p && p[2] === "input") { setMode("backward"); pickInput(p[3]); }
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", function (e) {
    if (drag && (e.buttons & 1)) {
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; }
      view.yaw += dx * 0.01; view.pitch = Math.max(-1.4, Math.min(1.4, view.pitch + dy * 0.01));
      drag.x = e.clientX; drag.y = e.clientY;
      draw3d();
      return;
    }
    var r = canvas.getBoundingClientRect(), p = pickAt(e.clientX - r.left, e.clientY - r.top);
    if (!p) { return; }
    if (p[2] === "output" && mode === "forward") { pickOutput(p[3]); }
    if (p[2] === "input" && mode === "backward") { pickInput(p[3]); }
  });

  // ---- interaction ----------------------------------------------------------------------------
  function pickOutput(at) { if (G.error || same(at, sel)) { return; } sel = at.slice(); refresh(); }
  function pickInput(v) { if (G.error || (same(v, bsel) && mode === "backward")) { return; } bsel = v.slice(); refresh(); }
  function setMode(m) {
    if (m === mode) { return; }
    mode = m;
    $("mode-" + m).checked = true;
    refresh();
  }
  function play() {
    if (timer !== null || G.error) { return; }
    setMode("forward");
    $("play").textContent = "Pause";
    var tick = function () {
      sel = atOf((stepOf(sel) + 1) % steps());
      refresh();
      timer = window.setTimeout(tick, parseInt($("speed").value, 10));
    };
    timer = window.setTimeout(tick, parseInt($("speed").value, 10));
  }
  function pause() {
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    $("play").textContent = "Play";
  }
  $("play").addEventListener("click", function () { if (timer === null) { play(); } else { pause(); } });
  $("step").addEventListener("input", function () { setMode("forward"); sel = atOf(parseInt($("step").value, 10)); refresh(); });
  $("speed").addEventListener("input", function () { $("v-speed").textContent = $("speed").value + " ms"; });
  $("mode-forward").addEventListener("change", function () { setMode("forward"); });
  $("mode-backward").addEventListener("change", function () { pause(); setMode("backward"); });
  ["input", "kernel", "stride", "padding", "dilation", "channels", "outchannels", "data"].forEach(function (n) {
    $("s-" + n).addEventListener(n === "data" ? "change" : "input", rebuild);
  });
  window.addEventListener("resize", draw3d);

  // ---- start ----------------------------------------------------------------------------------
  var init = CFG.initial || {};
  if (CFG.fixed) {
    $("controls").classList.add("hidden");
    $("fixednote").classList.remove("hidden");
    $("fixednote").textContent = CFG.fixed.note;
  } else {
    $("s-input").value = init.input || 4; $("s-kernel").value = init.kernel || 3;
    $("s-stride").value = init.stride || 1; $("s-dilation").value = init.dilation || 1;
    $("s-padding").value = init.padding === "same" ? 4 : (init.padding || 0);
    $("s-channels").value = init.channels || 1; $("s-outchannels").value = init.outchannels || 1;
    $("s-data").value = init.data || "cube";
  }
  $("v-speed").textContent = $("speed").value + " ms";
  if (CFG.title) { document.title = CFG.title; $("title").textContent = CFG.title; }
  rebuild();

  // For tests and for the curious: everything the page shows, as plain data.
  window.explorer = {
    state: function () {
      var P = G, fw = mode === "forward";
      var out = { settings: { input: P.size, kernel: P.kernel, stride: P.stride, padding: P.pad,
                              padding_mode: P.paddingMode, dilation: P.dilation, channels: P.C, out_channels: P.K,
                              data: CFG.fixed ? "fixed" : S.data },
                  error: P.error, out_size: P.error ? null : P.out, mode: mode, playing: timer !== null,
                  x: P.x, w: P.w, b: P.b, output: P.y, steps: steps(), labels: labelAt };
      if (!P.error) {
        out.step = stepOf(sel);
        out.selected = sel.slice();
        out.value = P.y[sel[0]][sel[1]][sel[2]][sel[3]];
        out.products = taps(P, sel);
        out.subtotals = range(P.C).map(function (c) { return range(P.kernel[0]).map(function (kd) {
          return out.products.filter(function (t) { return t.c === c && t.kd === kd; }).reduce(function (a, t) { return a + t.product; }, 0);
        }); });
        out.numpy = $("numpy").textContent;
        if (!fw) {
          var g = gradTerms(P, bsel);
          out.backward = { voxel: bsel.slice(), terms: g, grad: g.reduce(function (a, t) { return a + t.w; }, 0) };
        }
      }
      return out;
    },
    pickOutput: function (at) { setMode("forward"); pickOutput(at); },
    pickInput: function (v) { setMode("backward"); pickInput(v); },
    play: play,
    pause: pause
  };
})();
