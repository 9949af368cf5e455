// Live model: every <div class="live-model"> that reportgen/analyses/live_model.md.j2 put in a page runs the post's
// networks in the browser with onnxruntime-web, vendored under assets/vendor/onnxruntime-web/ (reportgen/site.py):
// nothing comes from a CDN. The div links the manifest that reportgen/analyses/live_model.py wrote beside the post's
// figures (test images, class names, each variant's ONNX file name), and the post links every ONNX file. Each URL
// is taken from the page's own links, which the site generator wrote for wherever it put the file (Material's blog
// moves a post's media files but not its .json files), and the runtime from this file's own URL: the page works at
// any depth and under a sub-path.
//
// The page feeds raw uint8 pixels: training's preprocessing (÷255, minus the run's mean, ÷ its standard deviation)
// is the first part of every exported graph. Shifts are the shift grid's (reportgen/analyses/_shift.py):
// out[y][x] = in[y − dy][x − dx], zero outside the image ("zero") or taken modulo the size ("wrap").
//
// For tests and measurements the container states what it shows: data-state (loading, ready, error,
// no-webassembly, file), data-shown (the input of the displayed results: "image:<n>" or "drawing:<n>", then
// "|dx|dy|mode"; data-wanted names the newest input, so the two are equal once the page has caught up),
// data-pixels (those 784 input bytes, base64), data-ready-ms (milliseconds from navigation start to the first
// results on screen), and each variant's column its probabilities at full precision (data-probabilities).
(function () {
  "use strict";

  // This file is site/javascripts/live-model.js; the runtime is loaded only by pages that have a live model.
  var here = document.currentScript ? document.currentScript.src : window.location.href;
  var ORT_DIR = new URL("../assets/vendor/onnxruntime-web/", here).href;
  var ORT_SCRIPT = ORT_DIR + "ort.wasm.min.js";   // the WebAssembly-only build: no WebGL, WebGPU or WebNN code
  var ZOOM = 7;          // screen pixels per image pixel on the two large canvases (28 × 7 = 196)
  var BRUSH = 1.6;       // the pen's radius in image pixels: strokes about as wide as a handwritten MNIST digit
  var loading = null;

  function loadRuntime() {
    if (window.ort) return Promise.resolve(window.ort);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = ORT_SCRIPT;
        script.onload = function () {
          if (!window.ort) { reject(new Error("no ort in " + ORT_SCRIPT)); return; }
          // One thread: a multi-threaded runtime needs a cross-origin-isolated page, which a static host
          // (GitHub Pages, python -m http.server) does not serve. Files from this site only.
          window.ort.env.wasm.numThreads = 1;
          window.ort.env.wasm.proxy = false;
          window.ort.env.wasm.wasmPaths = ORT_DIR;
          resolve(window.ort);
        };
        script.onerror = function () { loading = null; reject(new Error("could not load " + ORT_SCRIPT)); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  // The widget's words: English here; a translated edition's page gives its own in the widget's data-text
  // attribute (reportgen/analyses/live_model.py), with the locale its numbers are written in.
  var WORDS = {
    locale: null, test_image: "test image {index}", picture: "the picture: draw on it with the mouse or a finger",
    clear: "Clear", draw_or: "The picture: draw on it, or ", zero: "zero-filled", wrap: "wrapped around",
    network: "seed {seed}’s network", maps_of: "Feature maps of ", with_seed: "{label} (seed {seed})",
    maps: "{name}: {n} maps of {h} × {w} ", channel: "{name}, channel {c}", scale: "from {low} to {high}",
    white: ", white = 0", dark: ", dark = 0", sees: "What the networks see: ", drawing: "your drawing",
    moved: ", moved dx = {dx}, dy = {dy}, "
  };
  var words = WORDS;

  function say(key, values) {
    return words[key].replace(/\{(\w+)\}/g, function (all, name) { return String(values[name]); });
  }

  function fixed(x, digits) {
    return words.locale ? x.toLocaleString(words.locale, { minimumFractionDigits: digits, maximumFractionDigits: digits })
      : x.toFixed(digits);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function decode(base64) {
    var text = atob(base64), bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function encode(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  // The shift grid's shift of one size × size image: content moves dx right and dy down.
  function shift(src, size, dx, dy, mode) {
    var out = new Uint8Array(size * size);
    for (var y = 0; y < size; y++) {
      for (var x = 0; x < size; x++) {
        var sy = y - dy, sx = x - dx;
        if (mode === "wrap") {
          sy = ((sy % size) + size) % size;
          sx = ((sx % size) + size) % size;
        } else if (sy < 0 || sy >= size || sx < 0 || sx >= size) {
          continue;
        }
        out[y * size + x] = src[sy * size + sx];
      }
    }
    return out;
  }

  function paintGrey(canvas, pixels, width, height) {
    var ctx = canvas.getContext("2d"), image = ctx.createImageData(width, height);
    for (var i = 0; i < width * height; i++) {
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = pixels[i];
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  }

  // Colours of the feature maps, as in the static figures: blue (negative) – white (0) – red (positive) for signed
  // values (matplotlib's RdBu_r), viridis from 0 for values that are never negative.
  var DIVERGING = [[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]];
  var SEQUENTIAL = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function colour(stops, t) {
    var p = Math.min(Math.max(t, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(p), stops.length - 2);
    var f = p - i, a = stops[i], b = stops[i + 1];
    return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
  }

  function paintMaps(holder, values, shape) {
    var channels = shape[0], h = shape[1], w = shape[2], low = Infinity, high = -Infinity;
    for (var i = 0; i < values.length; i++) {
      if (values[i] < low) low = values[i];
      if (values[i] > high) high = values[i];
    }
    var signed = low < 0, limit = Math.max(Math.abs(low), Math.abs(high)) || 1;
    var canvases = holder.querySelectorAll("canvas");
    for (var c = 0; c < channels; c++) {
      var ctx = canvases[c].getContext("2d"), image = ctx.createImageData(w, h);
      for (var k = 0; k < w * h; k++) {
        var v = values[c * w * h + k];
        var rgb = signed ? colour(DIVERGING, 0.5 + v / (2 * limit)) : colour(SEQUENTIAL, v / (high || 1));
        image.data[4 * k] = rgb[0]; image.data[4 * k + 1] = rgb[1]; image.data[4 * k + 2] = rgb[2];
        image.data[4 * k + 3] = 255;
      }
      ctx.putImageData(image, 0, 0);
    }
    holder.querySelector(".live-model__scale").textContent =
      say("scale", { low: fixed(low, 2), high: fixed(high, 2) }) + (signed ? words.white : words.dark);
  }

  function showMessage(root, reason, detail) {
    root.dataset.state = reason;
    var message = root.querySelector('.live-model__message[data-reason="' + reason + '"]');
    if (message) {
      message.hidden = false;
      if (detail) message.appendChild(document.createTextNode(" " + detail));
    }
  }

  function Widget(root, ort, manifest) {
    this.root = root; this.ort = ort; this.manifest = manifest;
    this.size = manifest.size;
    this.images = decode(manifest.images.pixels);
    this.source = { kind: "image", index: 0 };
    this.drawing = new Uint8Array(this.size * this.size);
    this.drawn = 0;          // strokes so far: part of the input's name, so every drawing state is a new input
    this.dx = 0; this.dy = 0; this.mode = "zero";
    this.sessions = [];
    this.pending = false; this.running = false;
  }

  // The URL of a file the page links (the post's table links every network's ONNX file).
  function linked(file) {
    var links = document.querySelectorAll("a[href]");
    for (var i = 0; i < links.length; i++) {
      if (new URL(links[i].href).pathname.split("/").pop() === file) return links[i].href;
    }
    throw new Error("the page links no " + file);
  }

  Widget.prototype.start = function () {
    var self = this;
    return Promise.all(this.manifest.variants.map(function (v) {
      return self.ort.InferenceSession.create(linked(v.model), { executionProviders: ["wasm"] });
    })).then(function (sessions) {
      self.sessions = sessions;
      self.build();
      self.schedule();
    });
  };

  Widget.prototype.sourcePixels = function () {
    if (this.source.kind === "drawing") return this.drawing;
    var n = this.size * this.size;
    return this.images.subarray(this.source.index * n, (this.source.index + 1) * n);
  };

  Widget.prototype.key = function () {
    var name = this.source.kind === "drawing" ? "drawing:" + this.drawn : "image:" + this.source.index;
    return name + "|" + this.dx + "|" + this.dy + "|" + this.mode;
  };

  Widget.prototype.build = function () {
    var self = this, m = this.manifest, size = this.size, ui = el("div", "live-model__ui");
    // the test images, one button each
    var gallery = el("div", "live-model__gallery");
    m.images.labels.forEach(function (label, i) {
      var button = el("button", "live-model__thumb");
      button.type = "button";
      button.dataset.index = String(i);
      button.title = say("test_image", { index: m.images.indices[i] }) + ": " + m.classes[label];
      var canvas = el("canvas");
      canvas.width = canvas.height = size;
      paintGrey(canvas, self.images.subarray(i * size * size, (i + 1) * size * size), size, size);
      button.appendChild(canvas);
      button.addEventListener("click", function () {
        self.source = { kind: "image", index: i };
        self.schedule();
      });
      gallery.appendChild(button);
    });
    ui.appendChild(gallery);

    // the picture (drawable) and what the networks see after the shift
    var stage = el("div", "live-model__stage");
    var pad = el("div", "live-model__pad");
    this.canvas = el("canvas", "live-model__draw");
    this.canvas.width = this.canvas.height = size;
    this.canvas.setAttribute("aria-label", words.picture);
    pad.appendChild(this.canvas);
    var clear = el("button", "md-button live-model__clear", words.clear);
    clear.type = "button";
    clear.addEventListener("click", function () {
      self.drawing = new Uint8Array(size * size);
      self.drawn += 1;
      self.source = { kind: "drawing" };
      self.schedule();
    });
    var caption = el("div", "live-model__caption", words.draw_or);
    caption.appendChild(clear);
    pad.appendChild(caption);
    stage.appendChild(pad);
    var seen = el("div", "live-model__pad");
    this.seen = el("canvas", "live-model__seen");
    this.seen.width = this.seen.height = size;
    seen.appendChild(this.seen);
    this.seenCaption = el("div", "live-model__caption");
    seen.appendChild(this.seenCaption);
    stage.appendChild(seen);

    var controls = el("div", "live-model__controls");
    ["dx", "dy"].forEach(function (axis) {
      var label = el("label", "live-model__slider");
      var input = el("input");
      input.type = "range"; input.min = String(-m.radius); input.max = String(m.radius); input.step = "1";
      input.value = "0"; input.name = axis;
      var value = el("output", null, "0");
      input.addEventListener("input", function () {
        self[axis] = parseInt(input.value, 10);
        value.textContent = input.value;
        self.schedule();
      });
      label.appendChild(document.createTextNode(axis + " "));
      label.appendChild(input);
      label.appendChild(value);
      controls.appendChild(label);
    });
    [["zero", words.zero], ["wrap", words.wrap]].forEach(function (pair) {
      var label = el("label", "live-model__mode"), input = el("input");
      input.type = "radio"; input.name = "live-model-mode-" + self.root.dataset.index; input.value = pair[0];
      input.checked = pair[0] === "zero";
      input.addEventListener("change", function () { self.mode = pair[0]; self.schedule(); });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + pair[1]));
      controls.appendChild(label);
    });
    stage.appendChild(controls);
    ui.appendChild(stage);

    // every variant's probabilities, side by side
    var columns = el("div", "live-model__columns");
    this.columns = m.variants.map(function (v) {
      var column = el("div", "live-model__column");
      column.dataset.variant = v.name;
      column.appendChild(el("div", "live-model__title", v.label));
      column.appendChild(el("div", "live-model__seed", say("network", { seed: v.seed })));
      var rows = m.classes.map(function (name) {
        var row = el("div", "live-model__row");
        row.appendChild(el("span", "live-model__class", name));
        var bar = el("span", "live-model__bar"), fill = el("span", "live-model__fill");
        bar.appendChild(fill);
        row.appendChild(bar);
        var value = el("span", "live-model__value", "");
        row.appendChild(value);
        column.appendChild(row);
        return { row: row, fill: fill, value: value };
      });
      columns.appendChild(column);
      return { node: column, rows: rows };
    });
    ui.appendChild(columns);

    // the feature maps of one chosen variant
    var withMaps = m.variants.filter(function (v) { return v.maps.length; });
    if (withMaps.length) {
      var maps = el("div", "live-model__maps"), chooser = el("label", "live-model__chooser", words.maps_of);
      var select = el("select");
      withMaps.forEach(function (v) {
        var option = el("option", null, say("with_seed", { label: v.label, seed: v.seed }));
        option.value = v.name;
        select.appendChild(option);
      });
      chooser.appendChild(select);
      maps.appendChild(chooser);
      this.mapHolders = el("div");
      maps.appendChild(this.mapHolders);
      select.addEventListener("change", function () { self.chooseMaps(select.value); self.schedule(); });
      ui.appendChild(maps);
      this.chooseMaps(withMaps[0].name);
    }
    this.root.appendChild(ui);
    this.attachPen();
  };

  Widget.prototype.chooseMaps = function (name) {
    var self = this;
    this.mapsOf = name;
    this.mapHolders.textContent = "";
    this.mapsVariant().maps.forEach(function (map) {
      var holder = el("div", "live-model__layer");
      holder.dataset.layer = map.name;
      var head = el("div", "live-model__layer-title",
                    say("maps", { name: map.name, n: map.shape[0], h: map.shape[1], w: map.shape[2] }));
      head.appendChild(el("span", "live-model__scale"));
      holder.appendChild(head);
      var grid = el("div", "live-model__grid");
      for (var c = 0; c < map.shape[0]; c++) {
        var canvas = el("canvas");
        canvas.width = map.shape[2]; canvas.height = map.shape[1];
        canvas.title = say("channel", { name: map.name, c: c });
        grid.appendChild(canvas);
      }
      holder.appendChild(grid);
      self.mapHolders.appendChild(holder);
    });
  };

  Widget.prototype.mapsVariant = function () {
    var name = this.mapsOf;
    return this.manifest.variants.filter(function (v) { return v.name === name; })[0];
  };

  // Drawing: a soft round pen, strokes interpolated between pointer events; drawing on a test image draws on a
  // copy of it.
  Widget.prototype.attachPen = function () {
    var self = this, size = this.size, last = null;
    function at(event) {
      var box = self.canvas.getBoundingClientRect();
      return [(event.clientX - box.left) / box.width * size, (event.clientY - box.top) / box.height * size];
    }
    function dab(p) {
      for (var y = Math.floor(p[1] - BRUSH - 1); y <= p[1] + BRUSH + 1; y++) {
        for (var x = Math.floor(p[0] - BRUSH - 1); x <= p[0] + BRUSH + 1; x++) {
          if (x < 0 || y < 0 || x >= size || y >= size) continue;
          var d = Math.hypot(x + 0.5 - p[0], y + 0.5 - p[1]);
          var v = Math.round(255 * Math.min(Math.max(BRUSH - d + 0.5, 0), 1));
          if (v > self.drawing[y * size + x]) self.drawing[y * size + x] = v;
        }
      }
    }
    function stroke(p) {
      var from = last || p, steps = Math.max(1, Math.ceil(Math.hypot(p[0] - from[0], p[1] - from[1]) / 0.25));
      for (var s = 1; s <= steps; s++) {
        dab([from[0] + (p[0] - from[0]) * s / steps, from[1] + (p[1] - from[1]) * s / steps]);
      }
      last = p;
      self.drawn += 1;
      self.schedule();
    }
    this.canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      if (self.source.kind !== "drawing") self.drawing = new Uint8Array(self.sourcePixels());
      self.source = { kind: "drawing" };
      self.canvas.setPointerCapture(event.pointerId);
      last = null;
      stroke(at(event));
    });
    this.canvas.addEventListener("pointermove", function (event) {
      if (last !== null && self.canvas.hasPointerCapture(event.pointerId)) stroke(at(event));
    });
    function end() { last = null; }
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", end);
  };

  // Inputs change faster than the networks answer: run on the newest input only, one run at a time.
  Widget.prototype.schedule = function () {
    this.pending = true;
    this.root.dataset.wanted = this.key();
    if (!this.running) this.loop();
  };

  Widget.prototype.loop = function () {
    var self = this;
    if (!this.pending) { this.running = false; return; }
    this.pending = false;
    this.running = true;
    var key = this.key(), source = new Uint8Array(this.sourcePixels());
    var pixels = shift(source, this.size, this.dx, this.dy, this.mode);
    this.infer(pixels).then(function (outputs) {
      self.render(key, source, pixels, outputs);
    }).catch(function (error) {
      showMessage(self.root, "error", String(error && error.message || error));
    }).then(function () { self.loop(); });
  };

  Widget.prototype.infer = function (pixels) {
    var self = this, m = this.manifest, results = [], chain = Promise.resolve();
    // one network after another: the single-threaded runtime runs one at a time anyway
    this.sessions.forEach(function (session, k) {
      chain = chain.then(function () {
        var feeds = {};
        feeds[m.input] = new self.ort.Tensor("uint8", pixels, [1, self.size, self.size]);
        return session.run(feeds).then(function (out) { results[k] = out; });
      });
    });
    return chain.then(function () { return results; });
  };

  Widget.prototype.render = function (key, source, pixels, outputs) {
    var self = this, m = this.manifest, size = this.size;
    paintGrey(this.canvas, source, size, size);
    paintGrey(this.seen, pixels, size, size);
    var truth = this.source.kind === "image" ? m.images.labels[this.source.index] : null;
    this.seenCaption.textContent = words.sees +
      (truth === null ? words.drawing : say("test_image", { index: m.images.indices[this.source.index] }) + " (" +
       m.classes[truth] + ")") + say("moved", { dx: this.dx, dy: this.dy }) +
      (this.mode === "wrap" ? words.wrap : words.zero);
    this.gallerySelect();
    m.variants.forEach(function (v, k) {
      var probs = Array.from(outputs[k][m.output].data), best = 0;
      probs.forEach(function (p, c) { if (p > probs[best]) best = c; });
      var column = self.columns[k];
      column.node.dataset.probabilities = JSON.stringify(probs);
      column.node.dataset.predicted = String(best);
      column.rows.forEach(function (r, c) {
        r.fill.style.width = (100 * probs[c]).toFixed(1) + "%";
        r.value.textContent = fixed(100 * probs[c], 1) + "%";
        r.row.classList.toggle("live-model__row--best", c === best);
        r.row.classList.toggle("live-model__row--true", c === truth);
      });
      if (self.mapHolders && v.name === self.mapsOf) {
        v.maps.forEach(function (map, j) {
          paintMaps(self.mapHolders.children[j], outputs[k][map.name].data, map.shape);
        });
      }
    });
    this.root.dataset.pixels = encode(pixels);
    this.root.dataset.shown = key;
    if (this.root.dataset.state !== "ready") {
      this.root.dataset.state = "ready";
      this.root.dataset.readyMs = String(Math.round(performance.now()));
    }
  };

  Widget.prototype.gallerySelect = function () {
    var index = this.source.kind === "image" ? this.source.index : -1;
    this.root.querySelectorAll(".live-model__thumb").forEach(function (button) {
      button.setAttribute("aria-pressed", String(parseInt(button.dataset.index, 10) === index));
    });
  };

  function init() {
    var roots = Array.prototype.slice.call(document.querySelectorAll(".live-model"));
    if (!roots.length) return;
    if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
      roots.forEach(function (root) { showMessage(root, "no-webassembly"); });
      return;
    }
    roots.forEach(function (root, n) {
      root.dataset.index = String(n);
      if (root.dataset.text) words = Object.assign({}, WORDS, JSON.parse(root.dataset.text));
      root.dataset.state = "loading";
      var link = root.querySelector("a[href]");  // the manifest: the one link in the widget
      if (window.location.protocol === "file:") { showMessage(root, "file"); return; }
      if (!link) { showMessage(root, "error", "the page names no model files"); return; }
      Promise.all([loadRuntime(), fetch(link.href).then(function (response) {
        if (!response.ok) throw new Error(link.href + ": HTTP " + response.status);
        return response.json();
      })]).then(function (loaded) {
        return new Widget(root, loaded[0], loaded[1]).start();
      }).catch(function (error) {
        showMessage(root, "error", String(error && error.message || error));
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
