/* Interactive figures of the book, drawn in the reader's browser: plain JavaScript and SVG, no
 * library and no network request.
 *
 * Jupyter Book loads every .js file of _static/ on every page. This one acts only on the blocks
 * that lib/interactive.py writes into notebook outputs:
 *
 *   <div class="book-interactive" data-kind="temperature|estimators">
 *     <p class="book-interactive-fallback">...</p>
 *     <script type="application/json" class="book-interactive-data">{...}</script>
 *   </div>
 *
 * All numbers come precomputed (and rounded) from that JSON; this file only looks them up,
 * formats and draws them. The fallback text stays where this script does not run (a notebook).
 */
(function () {
  "use strict";
  if (window.BookInteractive) { return; }  // loaded twice: keep the first

  var SVGNS = "http://www.w3.org/2000/svg";
  // lib.plotting.COLORS (Okabe-Ito), the same roles as the book's matplotlib figures
  var COLORS = {
    exact: "#000000", empirical: "#0072B2", relaxed: "#E69F00", straightThrough: "#009E73",
    reinforce: "#CC79A7", baseline: "#D55E00", other: "#56B4E9"
  };
  var serial = 0;

  // ------------------------------------------------------------------------------ helpers

  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) { node.setAttribute(k, String(attrs[k])); }
    });
    return node;
  }
  function html(tag, attrs, parent, text) {
    var node = setAttrs(document.createElement(tag), attrs);
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function svg(tag, attrs, parent, text) {
    var node = setAttrs(document.createElementNS(SVGNS, tag), attrs);
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function fixed(value, digits) { return Number(value).toFixed(digits); }
  // round up to 1, 2, 2.5 or 5 times a power of ten
  function niceCeil(value) {
    if (!(value > 0)) { return 1; }
    var power = Math.pow(10, Math.floor(Math.log(value) / Math.LN10));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (value <= steps[i] * power * (1 + 1e-9)) { return steps[i] * power; }
    }
    return 10 * power;
  }
  function tickLabel(value) {
    if (Math.abs(value) < 1e-12) { return "0"; }
    return String(Number(value.toPrecision(3)));
  }
  // multiples of step between lo and hi
  function ticks(lo, hi, step) {
    var out = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
      out.push(Math.abs(v) < 1e-9 * step ? 0 : v);
    }
    return out;
  }
  function quantile(sorted, q) {
    if (!sorted.length) { return 0; }
    var i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i];
  }
  function makeSvg(parent, width, height, id) {
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, role: "img", width: "100%",
      "aria-labelledby": id + "-title " + id + "-desc", "class": "book-interactive-svg"
    }, parent);
    svg("rect", {x: 0, y: 0, width: width, height: height, fill: "#ffffff"}, root);
    return {
      root: root,
      title: svg("title", {id: id + "-title"}, root),
      desc: svg("desc", {id: id + "-desc"}, root),
      layer: svg("g", {}, root)
    };
  }
  function slider(parent, id, labelText, values, start) {
    var wrap = html("div", {"class": "book-interactive-control"}, parent);
    html("label", {"for": id}, wrap, labelText);
    var input = html("input", {
      type: "range", id: id, min: 0, max: values.length - 1, step: 1, value: start
    }, wrap);
    var output = html("output", {"for": id, "aria-hidden": "true"}, wrap);
    function sync() {
      var text = "τ = " + values[Number(input.value)];
      output.textContent = text;
      input.setAttribute("aria-valuetext", text);
    }
    input.addEventListener("input", sync);
    sync();
    return input;
  }
  function select(parent, id, labelText, options) {
    var wrap = html("div", {"class": "book-interactive-control"}, parent);
    html("label", {"for": id}, wrap, labelText);
    var node = html("select", {id: id}, wrap);
    options.forEach(function (text, i) { html("option", {value: i}, node, text); });
    return node;
  }

  // ------------------------------------------------------------- the temperature explorer

  function temperatureFigure(root, data) {
    var id = root.id || ("book-interactive-" + (++serial));
    var K = data.n_categories;
    var state = {tau: data.start, set: 0};
    var controls = html("div", {"class": "book-interactive-controls"}, root);
    var tauInput = slider(controls, id + "-tau", "Temperature τ", data.taus, data.start);
    var buttonWrap = html("div", {"class": "book-interactive-control"}, controls);
    var button = html("button", {type: "button", id: id + "-scores"}, buttonWrap, "New scores");
    var setOutput = html("output", {"for": id + "-scores", "aria-live": "polite"}, buttonWrap);
    var figure = html("figure", {"class": "book-interactive-figure"}, root);
    var W = 700, H = 540;
    var drawing = makeSvg(figure, W, H, id + "-svg");
    var readout = html("p", {"class": "book-interactive-readout", "aria-live": "polite"}, figure);
    html("figcaption", {}, figure, data.description);

    var panels = [
      {key: "sample", title: "One sample y = softmax((x + G)/τ)",
       color: COLORS.relaxed, x: 56, y: 86, reference: false},
      {key: "tempered", title: "Tempered samples argmax(x/τ + G)",
       color: COLORS.empirical, x: 402, y: 86, reference: true, tv: 0},
      {key: "argmax", title: "Argmax of Gumbel-softmax samples",
       color: COLORS.straightThrough, x: 56, y: 330, reference: true, tv: 1},
      {key: "mean", title: "Mean of Gumbel-softmax samples",
       color: COLORS.relaxed, x: 402, y: 330, reference: true, tv: 2}
    ];
    var PW = 285, PH = 165;

    function legend(layer) {
      var items = [
        ["rect", COLORS.exact, "softmax(x)"], ["rect", COLORS.empirical, "tempered samples"],
        ["tick", COLORS.baseline, "softmax(x/τ), exact"],
        ["rect", COLORS.straightThrough, "argmax of Gumbel-softmax"],
        ["rect", COLORS.relaxed, "Gumbel-softmax (sample, mean)"]
      ];
      var x = 20, y = 16;
      items.forEach(function (item) {
        var label = svg("text", {x: x + 18, y: y + 5, "class": "bi-small"}, layer, item[2]);
        var width = label.getComputedTextLength() || 7 * item[2].length;
        if (x + 18 + width > W - 10 && x > 20) {  // wrap to a second row
          x = 20;
          y += 22;
          setAttrs(label, {x: x + 18, y: y + 5});
        }
        if (item[0] === "rect") {
          svg("rect", {x: x, y: y - 6, width: 12, height: 12, fill: item[1]}, layer);
        } else {
          svg("line", {x1: x, x2: x + 12, y1: y, y2: y, stroke: item[1], "stroke-width": 3},
              layer);
        }
        x += 18 + width + 22;
      });
    }

    function panelMax(set, key) {
      var top = 0;
      set.rows.forEach(function (row) {
        row[key].forEach(function (v) { top = Math.max(top, v); });
        if (key === "tempered") { row.exact.forEach(function (v) { top = Math.max(top, v); }); }
      });
      set.probs.forEach(function (v) { top = Math.max(top, v); });
      return Math.min(1, Math.ceil(top * 10 + 1e-9) / 10);
    }

    function drawPanel(layer, panel, set, row) {
      var top = panel.key === "sample" ? 1 : panelMax(set, panel.key);
      var g = svg("g", {"class": "bi-panel", "data-panel": panel.key}, layer);
      var y = function (v) { return panel.y + PH - (v / top) * PH; };
      var slot = PW / K;
      var x = function (k) { return panel.x + (k + 0.5) * slot; };
      svg("text", {x: panel.x, y: panel.y - 10, "class": "bi-title"}, g, panel.title);
      [0, top / 2, top].forEach(function (v) {
        svg("line", {x1: panel.x, x2: panel.x + PW, y1: y(v), y2: y(v), "class": "bi-grid"}, g);
        svg("text", {x: panel.x - 6, y: y(v) + 4, "text-anchor": "end", "class": "bi-small"},
            g, tickLabel(v));
      });
      svg("line", {x1: panel.x, x2: panel.x, y1: panel.y, y2: panel.y + PH, "class": "bi-axis"},
          g);
      svg("line", {x1: panel.x, x2: panel.x + PW, y1: panel.y + PH, y2: panel.y + PH,
                   "class": "bi-axis"}, g);
      var values = row[panel.key];
      for (var k = 0; k < K; k++) {
        svg("text", {x: x(k), y: panel.y + PH + 14, "text-anchor": "middle",
                     "class": "bi-small"}, g, String(k));
        if (panel.reference) {
          svg("rect", {x: x(k) - 0.42 * slot, y: y(set.probs[k]), width: 0.4 * slot,
                       height: PH - (y(set.probs[k]) - panel.y), fill: COLORS.exact}, g);
          svg("rect", {x: x(k) + 0.02 * slot, y: y(values[k]), width: 0.4 * slot,
                       height: PH - (y(values[k]) - panel.y), fill: panel.color,
                       "class": "bi-bar", "data-value": values[k]}, g);
          if (panel.key === "tempered") {
            svg("line", {x1: x(k) + 0.02 * slot, x2: x(k) + 0.42 * slot, y1: y(row.exact[k]),
                         y2: y(row.exact[k]), stroke: COLORS.baseline, "stroke-width": 3}, g);
          }
        } else {
          svg("rect", {x: x(k) - 0.3 * slot, y: y(values[k]), width: 0.6 * slot,
                       height: PH - (y(values[k]) - panel.y), fill: panel.color,
                       "class": "bi-bar", "data-value": values[k]}, g);
        }
      }
      svg("text", {x: panel.x + PW / 2, y: panel.y + PH + 30, "text-anchor": "middle",
                   "class": "bi-small"}, g, "category");
      svg("text", {x: panel.x - 38, y: panel.y + PH / 2, "text-anchor": "middle",
                   transform: "rotate(-90 " + (panel.x - 38) + " " + (panel.y + PH / 2) + ")",
                   "class": "bi-small"}, g, panel.key === "sample" ? "y_k" : "probability");
      if (panel.reference) {
        svg("text", {x: panel.x + PW - 4, y: panel.y + 12, "text-anchor": "end",
                     "class": "bi-tv"}, g, "TV = " + fixed(row.tv[panel.tv], 3));
      }
    }

    function largest(values) {
      var best = 0;
      values.forEach(function (v, k) { if (v > values[best]) { best = k; } });
      return best;
    }

    function update() {
      state.tau = Number(tauInput.value);
      var set = data.sets[state.set];
      var row = set.rows[state.tau];
      var tau = data.taus[state.tau];
      clear(drawing.layer);
      legend(drawing.layer);
      panels.forEach(function (panel) { drawPanel(drawing.layer, panel, set, row); });
      var top = largest(row.sample);
      setOutput.textContent = "scores " + (state.set + 1) + " of " + data.sets.length;
      var text = "τ = " + tau + ", scores " + (state.set + 1) + " of " + data.sets.length +
        ". One sample: largest entry " + fixed(row.sample[top], 3) + " (category " + top +
        "). TV distance to softmax(x): tempered samples " + fixed(row.tv[0], 3) +
        ", argmax of Gumbel-softmax " + fixed(row.tv[1], 3) + ", mean of Gumbel-softmax " +
        fixed(row.tv[2], 3) + " (noise floor " + fixed(set.noise_floor, 3) + ", " +
        data.n_samples.toLocaleString("en-US") + " samples each).";
      readout.textContent = text;
      drawing.title.textContent = data.title + " at τ = " + tau;
      drawing.desc.textContent = data.description + " Now showing: " + text;
    }

    tauInput.addEventListener("input", update);
    tauInput.addEventListener("change", update);
    button.addEventListener("click", function () {
      state.set = (state.set + 1) % data.sets.length;
      update();
    });
    update();
  }

  // --------------------------------------------------------------- the estimator playground

  function estimatorPlayground(root, data) {
    var id = root.id || ("book-interactive-" + (++serial));
    var state = {tau: data.start, preset: 0, cost: 0, shown: {}};
    data.estimators.forEach(function (e) { state.shown[e.key] = true; });

    var controls = html("div", {"class": "book-interactive-controls"}, root);
    var tauInput = slider(controls, id + "-tau", "Temperature τ (Gumbel estimators)",
                          data.taus, data.start);
    var presetSelect = select(controls, id + "-preset", "Logits",
                              data.presets.map(function (p) { return p.label; }));
    var costSelect = select(controls, id + "-cost", "Cost",
                            data.costs.map(function (c) { return c.label; }));
    var fieldset = html("fieldset", {"class": "book-interactive-control"}, controls);
    html("legend", {}, fieldset, "Estimators shown");
    var boxes = data.estimators.map(function (e) {
      var label = html("label", {"class": "bi-check"}, fieldset);
      var box = html("input", {type: "checkbox", value: e.key, checked: "checked"}, label);
      html("span", {"class": "bi-swatch", style: "background:" + e.color, "aria-hidden": "true"},
           label);
      label.appendChild(document.createTextNode(e.label));
      return box;
    });

    var figure = html("figure", {"class": "book-interactive-figure"}, root);
    var W = 540, H = 612;
    var drawing = makeSvg(figure, W, H, id + "-svg");
    var readout = html("p", {"class": "book-interactive-readout", "aria-live": "polite"}, figure);
    var table = html("table", {"class": "book-interactive-table"}, figure);
    html("figcaption", {}, figure, data.description);
    var P = {x: 90, y: 52, size: 420};

    function entry(cell, est) {
      var list = cell.clouds[est.key];
      return est.relaxed ? list[state.tau] : list[0];
    }
    function points(e) {
      var unit = Math.pow(10, e.e);
      return e.x.map(function (v, i) { return [v * unit, e.y[i] * unit]; });
    }

    function viewRange(cell) {
      var c = cell.exact;
      var half = Math.max(Math.abs(c[0]), Math.abs(c[1])) * 1.15;  // keep the origin in view
      data.estimators.forEach(function (est) {
        if (!state.shown[est.key]) { return; }
        var e = entry(cell, est);
        var unit = Math.pow(10, e.e);
        var d = points(e).map(function (p) {
          return Math.max(Math.abs(p[0] - c[0]), Math.abs(p[1] - c[1]));
        }).sort(function (a, b) { return a - b; });
        half = Math.max(half, 1.1 * quantile(d, 0.9),
                        1.2 * Math.abs(e.mean[0] * unit - c[0]),
                        1.2 * Math.abs(e.mean[1] * unit - c[1]));
      });
      return niceCeil(half);
    }

    function draw(cell) {
      var layer = drawing.layer;
      clear(layer);
      var c = cell.exact, half = viewRange(cell);
      var sx = function (v) { return P.x + (v - (c[0] - half)) / (2 * half) * P.size; };
      var sy = function (v) { return P.y + P.size - (v - (c[1] - half)) / (2 * half) * P.size; };
      var inside = function (p) {
        return Math.abs(p[0] - c[0]) <= half && Math.abs(p[1] - c[1]) <= half;
      };
      var clamp = function (v, mid) { return Math.max(mid - half, Math.min(mid + half, v)); };
      var tau = data.taus[state.tau];
      svg("text", {x: P.x + P.size / 2, y: 18, "text-anchor": "middle", "class": "bi-title"},
          layer, "Single-sample gradient estimates");
      svg("text", {x: P.x + P.size / 2, y: 38, "text-anchor": "middle", "class": "bi-label"},
          layer, data.costs[state.cost].key + " cost, ℓ = (" +
          data.presets[state.preset].logits.join(", ") + "), τ = " + tau);
      var step = niceCeil(half / 2.5);
      ticks(c[0] - half, c[0] + half, step).forEach(function (v) {
        svg("line", {x1: sx(v), x2: sx(v), y1: P.y, y2: P.y + P.size, "class": "bi-grid"}, layer);
        svg("text", {x: sx(v), y: P.y + P.size + 15, "text-anchor": "middle",
                     "class": "bi-small"}, layer, tickLabel(v));
      });
      ticks(c[1] - half, c[1] + half, step).forEach(function (v) {
        svg("line", {x1: P.x, x2: P.x + P.size, y1: sy(v), y2: sy(v), "class": "bi-grid"}, layer);
        svg("text", {x: P.x - 6, y: sy(v) + 4, "text-anchor": "end", "class": "bi-small"},
            layer, tickLabel(v));
      });
      if (Math.abs(c[0]) <= half) {
        svg("line", {x1: sx(0), x2: sx(0), y1: P.y, y2: P.y + P.size, "class": "bi-zero"},
            layer);
      }
      if (Math.abs(c[1]) <= half) {
        svg("line", {x1: P.x, x2: P.x + P.size, y1: sy(0), y2: sy(0), "class": "bi-zero"},
            layer);
      }
      svg("rect", {x: P.x, y: P.y, width: P.size, height: P.size, "class": "bi-frame"}, layer);
      svg("text", {x: P.x + P.size / 2, y: P.y + P.size + 34, "text-anchor": "middle",
                   "class": "bi-label"}, layer, "estimate of ∂E[f(b)]/∂ℓ₁");
      var ly = P.y + P.size / 2;
      svg("text", {x: P.x - 52, y: ly, "text-anchor": "middle", "class": "bi-label",
                   transform: "rotate(-90 " + (P.x - 52) + " " + ly + ")"}, layer,
          "estimate of ∂E[f(b)]/∂ℓ₂");

      var outside = 0, means = [];
      data.estimators.forEach(function (est) {
        if (!state.shown[est.key]) { return; }
        var e = entry(cell, est);
        var g = svg("g", {"class": "bi-cloud", "data-estimator": est.key}, layer);
        points(e).forEach(function (p) {
          if (inside(p)) {
            svg("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.6, fill: est.color,
                           "fill-opacity": 0.35}, g);
          } else {
            outside += 1;
            svg("circle", {cx: sx(clamp(p[0], c[0])), cy: sy(clamp(p[1], c[1])), r: 2.6,
                           fill: "none", stroke: est.color, "stroke-width": 1}, g);
          }
        });
        var unit = Math.pow(10, e.e);
        means.push([est, [e.mean[0] * unit, e.mean[1] * unit]]);
      });
      means.forEach(function (m) {
        svg("circle", {cx: sx(clamp(m[1][0], c[0])), cy: sy(clamp(m[1][1], c[1])), r: 6.5,
                       fill: "#ffffff", "fill-opacity": 0.6, stroke: m[0].color,
                       "stroke-width": 2.5, "class": "bi-mean"}, layer);
      });
      var ex = sx(c[0]), ey = sy(c[1]);
      svg("path", {d: "M" + (ex - 9) + " " + ey + "h18M" + ex + " " + (ey - 9) + "v18",
                   stroke: COLORS.exact, "stroke-width": 3, "class": "bi-exact"}, layer);

      // legend, in two columns under the plot
      var items = data.estimators.map(function (est) {
        return {label: est.label + (est.relaxed ? " (τ = " + tau + ")" : ""), color: est.color,
                mark: "dot", faded: !state.shown[est.key]};
      });
      items.push({label: "mean of " + data.n_repeats.toLocaleString("en-US") + " estimates",
                  mark: "ring"});
      items.push({label: "exact gradient", mark: "cross"});
      items.push({label: "estimate beyond the edge", mark: "open"});
      var rows = Math.ceil(items.length / 2);
      items.forEach(function (item, i) {
        var lx = P.x - 40 + 250 * Math.floor(i / rows);
        var y = P.y + P.size + 62 + 22 * (i % rows);
        var opacity = item.faded ? 0.3 : 1;
        if (item.mark === "dot") {
          svg("circle", {cx: lx + 5, cy: y, r: 4.5, fill: item.color, "fill-opacity": opacity},
              layer);
        } else if (item.mark === "ring") {
          svg("circle", {cx: lx + 5, cy: y, r: 5.5, fill: "none", stroke: "#555555",
                         "stroke-width": 2}, layer);
        } else if (item.mark === "cross") {
          svg("path", {d: "M" + lx + " " + y + "h10M" + (lx + 5) + " " + (y - 5) + "v10",
                       stroke: COLORS.exact, "stroke-width": 2.5}, layer);
        } else {
          svg("circle", {cx: lx + 5, cy: y, r: 2.6, fill: "none", stroke: "#555555"}, layer);
        }
        svg("text", {x: lx + 16, y: y + 4.5, "class": "bi-small", "fill-opacity": opacity},
            layer, item.label);
      });
      return outside;
    }

    function fillTable(cell) {
      clear(table);
      var tau = data.taus[state.tau];
      html("caption", {}, table, "Bias and variance from " +
           data.n_repeats.toLocaleString("en-US") + " single-sample estimates per estimator " +
           "(dots: the first " + data.n_points + "). Exact gradient " + cell.exact_text + ".");
      var head = html("tr", {}, html("thead", {}, table));
      ["estimator", "τ", "bias ‖mean − exact‖", "noise level of the bias", "variance (trace)",
       "bias detected?"].forEach(function (t) { html("th", {scope: "col"}, head, t); });
      var body = html("tbody", {}, table);
      data.estimators.forEach(function (est) {
        var e = entry(cell, est);
        var tr = html("tr", {"data-estimator": est.key,
                             "class": state.shown[est.key] ? "" : "bi-hidden"}, body);
        var th = html("th", {scope: "row"}, tr);
        html("span", {"class": "bi-swatch", style: "background:" + est.color,
                      "aria-hidden": "true"}, th);
        th.appendChild(document.createTextNode(est.label));
        html("td", {}, tr, est.relaxed ? String(tau) : "–");
        html("td", {"class": "bi-num"}, tr, e.bias);
        html("td", {"class": "bi-num"}, tr, e.noise);
        html("td", {"class": "bi-num"}, tr, e.variance);
        html("td", {}, tr, e.detected ? "yes" : "no");
      });
    }

    function update() {
      state.tau = Number(tauInput.value);
      state.preset = Number(presetSelect.value);
      state.cost = Number(costSelect.value);
      boxes.forEach(function (box) { state.shown[box.value] = box.checked; });
      var cell = data.cells[state.preset][state.cost];
      var outside = draw(cell);
      fillTable(cell);
      var tau = data.taus[state.tau];
      var parts = [];
      data.estimators.forEach(function (est) {
        if (!state.shown[est.key]) { return; }
        var e = entry(cell, est);
        parts.push(est.label + (est.relaxed ? " (τ = " + tau + ")" : "") + ": bias " + e.bias +
                   " (noise level " + e.noise + "), variance " + e.variance);
      });
      var settings = data.costs[state.cost].label + "; " + data.presets[state.preset].label +
        "; τ = " + tau + ". Exact gradient " + cell.exact_text + "." +
        (outside ? " " + outside + " of the estimates shown lie beyond the edge of the view " +
                   "and are drawn on it as open circles." : "");
      var text = settings + " " +
        (parts.length ? parts.join("; ") + "." : "No estimator shown.");
      readout.textContent = settings;
      drawing.title.textContent = data.title + ": " + data.costs[state.cost].key + " cost, τ = " +
        tau;
      drawing.desc.textContent = data.description + " Now showing: " + text;
    }

    [tauInput, presetSelect, costSelect].forEach(function (node) {
      node.addEventListener("input", update);
      node.addEventListener("change", update);
    });
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  // ------------------------------------------------------------------------------- set-up

  var KINDS = {temperature: temperatureFigure, estimators: estimatorPlayground};

  function init(root) {
    if (root.getAttribute("data-ready") === "true") { return; }
    var draw = KINDS[root.getAttribute("data-kind")];
    var source = root.querySelector("script.book-interactive-data");
    if (!draw || !source) { return; }
    var data = JSON.parse(source.textContent);
    var fallback = root.querySelector(".book-interactive-fallback");
    if (fallback) { fallback.hidden = true; }
    html("p", {"class": "book-interactive-heading"}, root, data.title);
    draw(root, data);
    root.setAttribute("data-ready", "true");
  }

  function initAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".book-interactive"), function (root) {
      try {
        init(root);
      } catch (err) {
        // keep the fallback text and say why in the console (a broken figure must show)
        var fallback = root.querySelector(".book-interactive-fallback");
        if (fallback) { fallback.hidden = false; }
        throw err;
      }
    });
  }

  window.BookInteractive = {init: init, initAll: initAll};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initAll);
  } else {
    initAll();
  }
})();
