/* conv3d explorer, the 3D view: an orthographic drawing of the padded input (left) and the
 * output (right) on a canvas, the picked voxel's receptive field as cubes coloured by kernel
 * depth slice (forward), or one input voxel and the outputs that read it (backward).
 * Scene3D.draw returns where each voxel landed on the screen (for hovering) and where the
 * INPUT and OUTPUT labels were drawn.
 */
(function () {
  "use strict";
  var M = window.ConvMath, inside = M.inside, same = M.same, taps = M.taps, gradTerms = M.gradTerms;
  var KD_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];

  function rotate(view, p) {
    var cy = Math.cos(view.yaw), sy = Math.sin(view.yaw), cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
    var x = cy * p[0] - sy * p[2], z = sy * p[0] + cy * p[2];
    var y = cp * p[1] - sp * z, z2 = sp * p[1] + cp * z;
    return [x, y, z2];
  }

  // opt: {view: {yaw, pitch}, forward: bool, sel: (k, od, oh, ow), bsel: (c, d, h, w)}
  function draw(canvas, P, opt) {
    var ctx = canvas.getContext("2d"), view = opt.view, sel = opt.sel, bsel = opt.bsel, fw = opt.forward;
    var picks = [], labelAt = {};
    var dpr = window.devicePixelRatio || 1, Wc = canvas.clientWidth, Hc = canvas.clientHeight;
    canvas.width = Math.round(Wc * dpr); canvas.height = Math.round(Hc * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, Wc, Hc);
    // world: x = w (right), y = h (down), z = d (away from the viewer); output placed right of the input
    var inLo = P.pad.map(function (p) { return -p[0]; });
    var inN = [0, 1, 2].map(function (a) { return P.size[a] + P.pad[a][0] + P.pad[a][1]; });
    var gap = 3, ox = inLo[2] + inN[2] + gap;
    var outN = P.error ? [0, 0, 0] : P.out;
    var boxes = [{ lo: [inLo[2], inLo[1], inLo[0]], n: [inN[2], inN[1], inN[0]] },
                 { lo: [ox, 0, 0], n: [outN[2], outN[1], outN[0]] }];
    var corners = [];
    boxes.forEach(function (b) { [0, 1].forEach(function (i) { [0, 1].forEach(function (j) { [0, 1].forEach(function (k) {
      corners.push(rotate(view, [b.lo[0] + i * b.n[0], b.lo[1] + j * b.n[1], b.lo[2] + k * b.n[2]]));
    }); }); }); });
    var minx = Math.min.apply(null, corners.map(function (c) { return c[0]; })), maxx = Math.max.apply(null, corners.map(function (c) { return c[0]; }));
    var miny = Math.min.apply(null, corners.map(function (c) { return c[1]; })), maxy = Math.max.apply(null, corners.map(function (c) { return c[1]; }));
    var scale = Math.min((Wc - 40) / (maxx - minx), (Hc - 60) / (maxy - miny));
    var cx = Wc / 2 - scale * (minx + maxx) / 2, cyy = 40 + (Hc - 50) / 2 - scale * (miny + maxy) / 2;
    function proj(p) { var r = rotate(view, p); return [cx + scale * r[0], cyy + scale * r[1], r[2]]; }
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
    return { picks: picks, labels: labelAt };
  }

  window.Scene3D = { draw: draw, KD_COLOURS: KD_COLOURS };
})();
