/* conv3d explorer, the arithmetic: sizes, padding, the products of one output voxel and the
 * input gradient, for any settings. Plain functions of a problem P = {C, K, size, kernel,
 * stride, dilation, pad, x, w, b}; no page, no drawing (explorer.js and view3d.js use them).
 *
 * Layout conventions (the same as conv3d): x[c][d][h][w], weights w[k][c][kd][kh][kw], output
 * y[k][od][oh][ow]; cross-correlation, no kernel flip. Per axis
 *   o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1,
 * and kernel tap t of output o reads input index  o*s - p_lo + t*d  (outside 0..i-1: padding, 0).
 * padding 'same' is the TensorFlow/Keras rule: o = ceil(i/s), total padding
 * max((o - 1)*s + d*(k - 1) + 1 - i, 0), the smaller half before the data.
 */
(function () {
  "use strict";
  var AXES = ["depth", "height", "width"];

  function fmt(v) {
    if (!isFinite(v)) { return String(v); }
    if (Number.isInteger(v)) { return String(v); }
    return String(parseFloat(v.toPrecision(6)));
  }
  function paren(v) { return v < 0 ? "(" + fmt(v) + ")" : fmt(v); }
  function range(n) { var r = []; for (var i = 0; i < n; i++) { r.push(i); } return r; }
  function same(a, b) { return a.length === b.length && a.every(function (v, i) { return v === b[i]; }); }

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

  window.ConvMath = { AXES: AXES, fmt: fmt, paren: paren, range: range, same: same, outSize: outSize,
                      samePadding: samePadding, formulaInput: formulaInput, formulaWeight: formulaWeight,
                      build: build, shapeOf: shapeOf, finish: finish, inside: inside, taps: taps,
                      value: value, gradTerms: gradTerms };
})();
