/* conv3d explorer: a 3D convolution, computed in the page, product by product.
 *
 * Layout conventions (the same as conv3d): x[c][d][h][w], weights w[k][c][kd][kh][kw], output
 * y[k][od][oh][ow]; cross-correlation, no kernel flip. Per axis
 *   o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1,
 * and kernel tap t of output o reads input index  o*s - p_lo + t*d  (outside 0..i-1: padding, 0).
 * padding 'same' is the TensorFlow/Keras rule: o = ceil(i/s), total padding
 * max((o - 1)*s + d*(k - 1) + 1 - i, 0), the smaller half before the data.
 *
 * Nothing is loaded from anywhere: the data are the worked cube (embedded by the Python side) or
 * small integers from a fixed formula, so a test can recompute every number with conv3d.
 */
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("explorer-config").textContent);
  var KD_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
  var AXES = ["depth", "height", "width"];
  var $ = function (id) { return document.getElementById(id); };

  function fmt(v) {
    if (!isFinite(v)) { return String(v); }
    if (Number.isInteger(v)) { return String(v); }
    return String(parseFloat(v.toPrecision(6)));
  }
  function paren(v) { return v < 0 ? "(" + fmt(v) + ")" : fmt(v); }
  function range(n) { var r = []; for (var i = 0; i < n; i++) { r.push(i); } return r; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  // ---- geometry -------------------------------------------------------------------------------
  function outSize(i, k, s, lo, hi, d) { return Math.floor((i + lo + hi - d * (k - 1) - 1) / s) + 1; }
  function samePadding(i, k, s, d) {
    var o = Math.ceil(i / s);
    var total = Math.max((o - 1) * s + d * (k - 1) + 1 - i, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  }

  // The formula data: input 0..9, weights -2..2, zero bias (integers, so every sum is exact).
  function formulaInput(c, d, h, w) { return (1 + 3 * d + 5 * h + 7 * w + 11 * c) % 10; }
  function formulaWeight(k, c, kd, kh, kw) { return ((2 * kd + 3 * kh + 5 * kw + 7 * c + 11 * k) % 5) - 2; }
  function build(shape, f) {
    if (shape.length === 0) { return f([]); }
    return range(shape[0]).map(function (i) {
      return build(shape.slice(1), function (rest) { return f([i].concat(rest)); });
    });
  }
  function shapeOf(a) { var s = []; while (Array.isArray(a)) { s.push(a.length); a = a[0]; } return s; }

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

  function finish(P) {
    P.error = null;
    P.out = [0, 1, 2].map(function (a) {
      return outSize(P.size[a], P.kernel[a], P.stride[a], P.pad[a][0], P.pad[a][1], P.dilation[a]);
    });
    [0, 1, 2].forEach(function (a) {
      var span = P.dilation[a] * (P.kernel[a] - 1) + 1, padded = P.size[a] + P.pad[a][0] + P.pad[a][1];
      if (!P.error && span > padded) {
        P.error = "The " + AXES[a] + " kernel span d(k-1)+1 = " + span + " is larger than the padded " +
                  AXES[a] + " " + padded + ": no output. Use a smaller kernel or dilation, or more padding.";
      }
    });
    P.y = P.error ? [] : build([P.K].concat(P.out), function (i) { return value(P, i); });
    return P;
  }

  function inside(P, i) { return i[0] >= 0 && i[0] < P.size[0] && i[1] >= 0 && i[1] < P.size[1] && i[2] >= 0 && i[2] < P.size[2]; }
  function readIndex(P, a, o, t) { return o * P.stride[a] - P.pad[a][0] + t * P.dilation[a]; }

  function taps(P, at) {   // at = (k, od, oh, ow): every product, in (c, kd, kh, kw) order
    var out = [];
    for (var c = 0; c < P.C; c++) {
      for (var kd = 0; kd < P.kernel[0]; kd++) {
        for (var kh = 0; kh < P.kernel[1]; kh++) {
          for (var kw = 0; kw < P.kernel[2]; kw++) {
            var i = [readIndex(P, 0, at[1], kd), readIndex(P, 1, at[2], kh), readIndex(P, 2, at[3], kw)];
            var pad = !inside(P, i);
            var xv = pad ? 0 : P.x[c][i[0]][i[1]][i[2]], wv = P.w[at[0]][c][kd][kh][kw];
            out.push({ c: c, kd: kd, kh: kh, kw: kw, input: i, padding: pad, x: xv, w: wv, product: xv * wv });
          }
        }
      }
    }
    return out;
  }
  function value(P, at) {
    return taps(P, at).reduce(function (s, t) { return s + t.product; }, 0) + P.b[at[0]];
  }

  // Backward, with L = sum(y) (every dL/dy = 1): dL/dx[c,i] = sum of w[k,c,t] over every
  // (output o, tap t) with o*s - p_lo + t*d = i on all three axes.
  function gradTerms(P, v) {
    var terms = [];
    var per = [0, 1, 2].map(function (a) {
      var pairs = [];
      for (var t = 0; t < P.kernel[a]; t++) {
        var num = v[a + 1] + P.pad[a][0] - t * P.dilation[a];
        if (num % P.stride[a] === 0) {
          var o = num / P.stride[a];
          if (o >= 0 && o < P.out[a]) { pairs.push([o, t]); }
        }
      }
      return pairs;
    });
    for (var k = 0; k < P.K; k++) {
      per[0].forEach(function (pd) { per[1].forEach(function (ph) { per[2].forEach(function (pw) {
        terms.push({ output: [k, pd[0], ph[0], pw[0]], tap: [pd[1], ph[1], pw[1]],
                     w: P.w[k][v[0]][pd[1]][ph[1]][pw[1]] });
      }); }); });
    }
    return terms;
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

  function same(a, b) { return a.length === b.length && a.every(function (v, i) { return v === b[i]; }); }

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
  var canvas = $("view3d"), ctx = canvas.getContext("2d");
  var picks = [];   // projected voxel centres, for hovering: [x, y, kind, index]
  var labelAt = {};  // where the INPUT and OUTPUT labels were drawn (reported by state())

  function rotate(p) {
    var cy = Math.cos(view.yaw), sy = Math.sin(view.yaw), cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
    var x = cy * p[0] - sy * p[2], z = sy * p[0] + cy * p[2];
    var y = cp * p[1] - sp * z, z2 = sp * p[1] + cp * z;
    return [x, y, z2];
  }

  function draw3d() {
    var dpr = window.devicePixelRatio || 1, Wc = canvas.clientWidth, Hc = canvas.clientHeight;
    canvas.width = Math.round(Wc * dpr); canvas.height = Math.round(Hc * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, Wc, Hc);
    picks = [];
    var P = G;
    // world: x = w (right), y = h (down), z = d (away from the viewer); output placed right of the input
    var inLo = P.pad.map(function (p) { return -p[0]; });
    var inN = [0, 1, 2].map(function (a) { return P.size[a] + P.pad[a][0] + P.pad[a][1]; });
    var gap = 3, ox = inLo[2] + inN[2] + gap;
    var outN = P.error ? [0, 0, 0] : P.out;
    var boxes = [{ lo: [inLo[2], inLo[1], inLo[0]], n: [inN[2], inN[1], inN[0]] },
                 { lo: [ox, 0, 0], n: [outN[2], outN[1], outN[0]] }];
    var corners = [];
    boxes.forEach(function (b) { [0, 1].forEach(function (i) { [0, 1].forEach(function (j) { [0, 1].forEach(function (k) {
      corners.push(rotate([b.lo[0] + i * b.n[0], b.lo[1] + j * b.n[1], b.lo[2] + k * b.n[2]]));
    }); }); }); });
    var minx = Math.min.apply(null, corners.map(function (c) { return c[0]; })), maxx = Math.max.apply(null, corners.map(function (c) { return c[0]; }));
    var miny = Math.min.apply(null, corners.map(function (c) { return c[1]; })), maxy = Math.max.apply(null, corners.map(function (c) { return c[1]; }));
    var scale = Math.min((Wc - 40) / (maxx - minx), (Hc - 60) / (maxy - miny));
    var cx = Wc / 2 - scale * (minx + maxx) / 2, cyy = 40 + (Hc - 50) / 2 - scale * (miny + maxy) / 2;
    function proj(p) { var r = rotate(p); return [cx + scale * r[0], cyy + scale * r[1], r[2]]; }
    function boxTop(b) {   // screen point above a box, for its label
      var pts = [];
      [0, 1].forEach(function (i) { [0, 1].forEach(function (j) { [0, 1].forEach(function (k) {
        pts.push(proj([b.lo[0] + i * b.n[0], b.lo[1] + j * b.n[1], b.lo[2] + k * b.n[2]]));
      }); }); });
      return [pts.reduce(function (a, p) { return a + p[0]; }, 0) / 8, Math.min.apply(null, pts.map(function (p) { return p[1]; }))];
    }
    var solids = [];   // [world lo corner, fill colour, stroke colour]
    var dots = [];     // [screen x, y, depth, colour, radius]
    // input voxels (channel 0 in the forward view, the picked channel in the backward view)
    var fw = mode === "forward";
    var tp = (!P.error && fw) ? taps(P, sel) : [];
    var tapAt = {};
    tp.forEach(function (t) { if (t.c === 0) { tapAt[t.input.join(",")] = t.kd; } });
    var gterms = (!P.error && !fw) ? gradTerms(P, bsel) : [];
    var feeds = {};
    gterms.forEach(function (t) { if (t.output[0] === 0) { feeds[t.output.slice(1).join(",")] = true; } });  // the view shows output channel 0
    for (var d = inLo[0]; d < inLo[0] + inN[0]; d++) {
      for (var h = inLo[1]; h < inLo[1] + inN[1]; h++) {
        for (var w = inLo[2]; w < inLo[2] + inN[2]; w++) {
          var i = [d, h, w], key = i.join(","), pad = !inside(P, i);
          if (fw && tapAt[key] !== undefined) {
            solids.push([[w, h, d], KD_COLOURS[tapAt[key] % KD_COLOURS.length], pad ? 0.35 : 0.75]);
          } else if (!fw && same(i, bsel.slice(1))) {
            solids.push([[w, h, d], "#7b2cbf", 0.85]);
          } else {
            var pp = proj([w + 0.5, h + 0.5, d + 0.5]);
            dots.push([pp[0], pp[1], pp[2], pad ? "#c8c8c8" : "#6f9fd8", pad ? 1.6 : 2.6]);
          }
          if (!pad) { var q = proj([w + 0.5, h + 0.5, d + 0.5]); picks.push([q[0], q[1], "input", [fw ? 0 : bsel[0], d, h, w]]); }
        }
      }
    }
    if (!P.error) {
      var k = fw ? sel[0] : 0;
      for (d = 0; d < P.out[0]; d++) {
        for (h = 0; h < P.out[1]; h++) {
          for (w = 0; w < P.out[2]; w++) {
            if (fw && same([d, h, w], sel.slice(1))) {
              solids.push([[ox + w, h, d], "#d62728", 0.9]);
            } else if (!fw && feeds[[d, h, w].join(",")]) {
              solids.push([[ox + w, h, d], "#7b2cbf", 0.6]);
            } else {
              pp = proj([ox + w + 0.5, h + 0.5, d + 0.5]);
              dots.push([pp[0], pp[1], pp[2], "#f0a040", 3]);
            }
            q = proj([ox + w + 0.5, h + 0.5, d + 0.5]);
            picks.push([q[0], q[1], "output", [k, d, h, w]]);
          }
        }
      }
    }
    // box outlines
    ctx.lineWidth = 1;
    boxes.forEach(function (b, bi) {
      if (b.n[0] === 0) { return; }
      ctx.strokeStyle = bi === 0 ? "#6f9fd8" : "#f0a040";
      var L = b.lo, N = b.n;
      var edges = [[[0, 0, 0], [1, 0, 0]], [[0, 1, 0], [1, 1, 0]], [[0, 0, 1], [1, 0, 1]], [[0, 1, 1], [1, 1, 1]],
                   [[0, 0, 0], [0, 1, 0]], [[1, 0, 0], [1, 1, 0]], [[0, 0, 1], [0, 1, 1]], [[1, 0, 1], [1, 1, 1]],
                   [[0, 0, 0], [0, 0, 1]], [[1, 0, 0], [1, 0, 1]], [[0, 1, 0], [0, 1, 1]], [[1, 1, 0], [1, 1, 1]]];
      edges.forEach(function (e) {
        var a = proj([L[0] + e[0][0] * N[0], L[1] + e[0][1] * N[1], L[2] + e[0][2] * N[2]]);
        var c = proj([L[0] + e[1][0] * N[0], L[1] + e[1][1] * N[1], L[2] + e[1][2] * N[2]]);
        ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(c[0], c[1]); ctx.stroke();
      });
    });
    if (P.pad.some(function (p) { return p[0] || p[1]; })) {   // the real input inside the padding
      ctx.setLineDash([4, 3]); ctx.strokeStyle = "#3b6fb0";
      var L = [0, 0, 0], N = [P.size[2], P.size[1], P.size[0]];
      [[[0, 0, 0], [1, 0, 0]], [[0, 1, 0], [1, 1, 0]], [[0, 0, 0], [0, 1, 0]], [[1, 0, 0], [1, 1, 0]],
       [[0, 0, 1], [1, 0, 1]], [[0, 1, 1], [1, 1, 1]], [[0, 0, 1], [0, 1, 1]], [[1, 0, 1], [1, 1, 1]],
       [[0, 0, 0], [0, 0, 1]], [[1, 0, 0], [1, 0, 1]], [[0, 1, 0], [0, 1, 1]], [[1, 1, 0], [1, 1, 1]]].forEach(function (e) {
        var a = proj([L[0] + e[0][0] * N[0], L[1] + e[0][1] * N[1], L[2] + e[0][2] * N[2]]);
        var c = proj([L[0] + e[1][0] * N[0], L[1] + e[1][1] * N[1], L[2] + e[1][2] * N[2]]);
        ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(c[0], c[1]); ctx.stroke();
      });
      ctx.setLineDash([]);
    }
    // painter's algorithm: far things first
    var items = dots.map(function (p) { return { z: p[2], dot: p }; });
    solids.forEach(function (s) { var c = proj([s[0][0] + 0.5, s[0][1] + 0.5, s[0][2] + 0.5]); items.push({ z: c[2], solid: s }); });
    items.sort(function (a, b) { return b.z - a.z; });
    items.forEach(function (it) {
      if (it.dot) {
        ctx.fillStyle = it.dot[3]; ctx.beginPath(); ctx.arc(it.dot[0], it.dot[1], it.dot[4], 0, 2 * Math.PI); ctx.fill();
      } else { drawCube(it.solid); }
    });
    function drawCube(s) {
      var o = s[0], sh = 0.08;
      var faces = [[[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 0, 1], [0, 1, 1], [1, 1, 1], [1, 0, 1]],
                   [[0, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], [[1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
                   [[0, 0, 0], [0, 0, 1], [1, 0, 1], [1, 0, 0]], [[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1]]];
      faces.forEach(function (f) {
        var pts = f.map(function (c) { return proj([o[0] + sh + c[0] * (1 - 2 * sh), o[1] + sh + c[1] * (1 - 2 * sh), o[2] + sh + c[2] * (1 - 2 * sh)]); });
        var cross = (pts[1][0] - pts[0][0]) * (pts[2][1] - pts[0][1]) - (pts[1][1] - pts[0][1]) * (pts[2][0] - pts[0][0]);
        if (cross >= 0) { return; }   // faces turned away from the viewer
        ctx.globalAlpha = s[2];
        ctx.fillStyle = s[1];
        ctx.beginPath(); ctx.moveTo(pts[0][0], pts[0][1]);
        for (var j = 1; j < 4; j++) { ctx.lineTo(pts[j][0], pts[j][1]); }
        ctx.closePath(); ctx.fill();
        ctx.globalAlpha = 1; ctx.strokeStyle = "rgba(0,0,0,0.45)"; ctx.stroke();
      });
    }
    // labels: drawn where each box actually is, so they cannot disagree with the picture
    ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.fillStyle = "#1f4f8f";
    var t0 = boxTop(boxes[0]);
    labelAt = { input: t0 };
    ctx.fillText("INPUT x" + (P.C > 1 ? " (channel " + (fw ? 0 : bsel[0]) + ")" : "") + "  " + P.size.join("×") +
                 (P.pad.some(function (p) { return p[0] || p[1]; }) ? " + padding" : ""), t0[0], Math.max(t0[1] - 8, 14));
    if (!P.error) {
      ctx.fillStyle = "#a05a00";
      var t1 = boxTop(boxes[1]);
      labelAt.output = t1;
      ctx.fillText("OUTPUT y" + (P.K > 1 ? " (channel " + (fw ? sel[0] : 0) + ")" : "") + "  " + P.out.join("×"), t1[0], Math.max(t1[1] - 8, 14));
    }
    // axis arrows at the input's first corner
    var a0 = proj([inLo[2], inLo[1], inLo[0]]);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#555";
    [["w", [1.5, 0, 0]], ["h", [0, 1.5, 0]], ["d", [0, 0, 1.5]]].forEach(function (ax) {
      var b = proj([inLo[2] + ax[1][0], inLo[1] + ax[1][1], inLo[0] + ax[1][2]]);
      ctx.beginPath(); ctx.moveTo(a0[0], a0[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
      ctx.fillText(ax[0], b[0] + (b[0] - a0[0]) * 0.4, b[1] + (b[1] - a0[1]) * 0.4 + 4);
    });
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
