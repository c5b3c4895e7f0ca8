// Show-Attend-Tell captioning in the browser: the exported ONNX encoder and decoder step (onnx/), greedy decoding,
// and one attention panel per word. Preprocessing repeats the saved processor's (torchvision antialiased bicubic
// resize, rounded to 8 bits, then (x - 255 mean) / (255 std)); tests/model_card/test_web_browser.py compares it with
// the Python processor on real photos.
"use strict";

const MODEL_BASE = new URLSearchParams(location.search).get("model") || "./";
const PANEL_SIDE = 192;
const statusLine = document.getElementById("status");
let config, encoder, decoder;

async function loadModel() {
  ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated, so no wasm threads
  config = await (await fetch(MODEL_BASE + "onnx/captioner.json")).json();
  const options = { executionProviders: ["wasm"] };
  encoder = await ort.InferenceSession.create(MODEL_BASE + "onnx/encoder_model.onnx", options);
  decoder = await ort.InferenceSession.create(MODEL_BASE + "onnx/decoder_model.onnx", options);
}

// torch's antialiased bicubic resampling of uint8 images along one axis (a = -0.5, support widened by the scale when
// shrinking), in its int16 fixed point: the same integers as show_attend_tell_onnx.resize_taps.
function cubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function resizeTaps(inSize, outSize) {
  const scale = inSize / outSize, support = 2 * Math.max(scale, 1), inverse = 1 / Math.max(scale, 1);
  const rows = [];
  let largest = 0;
  for (let o = 0; o < outSize; o++) {
    const center = scale * (o + 0.5);
    const low = Math.max(Math.trunc(center - support + 0.5), 0);
    const high = Math.min(Math.trunc(center + support + 0.5), inSize);
    const taps = [];
    let total = 0;
    for (let j = low; j < high; j++) { const w = cubic((j - center + 0.5) * inverse); taps.push(w); total += w; }
    const weights = taps.map((w) => (total !== 0 ? w / total : 0));
    largest = Math.max(largest, ...weights);
    rows.push({ low, weights });
  }
  let precision = 0;
  while (precision < 22 && Math.trunc(0.5 + largest * 2 ** (precision + 1)) < 2 ** 15) precision++;
  for (const row of rows) {
    row.weights = row.weights.map((w) => (w < 0 ? Math.trunc(w * 2 ** precision - 0.5) : Math.trunc(w * 2 ** precision + 0.5)));
  }
  return { rows, precision };
}

// One pass: `src` holds `count` lines of `inSize` samples `stride` apart (3 channels interleaved).
function resamplePass(src, inSize, outSize, lines, at) {
  const { rows, precision } = resizeTaps(inSize, outSize);
  const out = new Uint8Array(outSize * lines * 3);
  const half = 2 ** (precision - 1), unit = 2 ** precision;
  for (let line = 0; line < lines; line++) {
    rows.forEach(({ low, weights }, o) => {
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let t = 0; t < weights.length; t++) sum += weights[t] * src[at(line, low + t) + c];
        out[at.out(line, o) + c] = Math.min(255, Math.max(0, Math.floor(sum / unit)));
      }
    });
  }
  return out;
}

// RGBA pixels (alpha composited on white) -> pixel_values (1, 3, height, width) exactly as the processor computes
// them: width pass, height pass, then (x - 255 mean) / (255 std) in float32.
function preprocess(rgba, width, height) {
  const outH = config.image.height, outW = config.image.width;
  let rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const alpha = rgba[4 * p + 3] / 255;
    for (let c = 0; c < 3; c++) rgb[3 * p + c] = Math.round(rgba[4 * p + c] * alpha + 255 * (1 - alpha));
  }
  if (width !== outW) { // lines are rows
    const at = (line, i) => (line * width + i) * 3;
    at.out = (line, o) => (line * outW + o) * 3;
    rgb = resamplePass(rgb, width, outW, height, at);
  }
  if (height !== outH) { // lines are columns
    const at = (line, i) => (i * outW + line) * 3;
    at.out = (line, o) => (o * outW + line) * 3;
    rgb = resamplePass(rgb, height, outH, outW, at);
  }
  const pixels = new Float32Array(3 * outH * outW);
  const mean = config.image.mean.map((m) => Math.fround(Math.fround(m) * 255));
  const std = config.image.std.map((s) => Math.fround(Math.fround(s) * 255));
  for (let p = 0; p < outH * outW; p++) {
    for (let c = 0; c < 3; c++) pixels[c * outH * outW + p] = Math.fround(Math.fround(rgb[3 * p + c] - mean[c]) / std[c]);
  }
  return pixels;
}

// The pixels of an image file, decoded as the browser shows it (EXIF orientation applied, no colour conversion).
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const full = document.createElement("canvas");
  full.width = bitmap.width; full.height = bitmap.height;
  const context = full.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  return { bitmap, rgba: context.getImageData(0, 0, bitmap.width, bitmap.height).data };
}

// The tokens that would end an n-gram of `ngramSize` tokens that `ids` (start token first) already holds: every
// token that followed an earlier occurrence of its last ngramSize - 1 tokens (transformers' no_repeat_ngram_size; 0
// turns it off). show_attend_tell_onnx's repeated_ngram_ends; tests/model_card/test_web_rules.py holds them equal.
function repeatedNgramEnds(ids, ngramSize) {
  const context = ngramSize - 1, ends = [];
  if (ngramSize < 1 || ids.length + 1 < ngramSize) return ends;
  const last = ids.slice(ids.length - context);
  for (let start = 0; start + context < ids.length; start++) {
    if (last.every((token, i) => ids[start + i] === token)) ends.push(ids[start + context]);
  }
  return ends;
}

// The next greedy token: the first maximum of the logits (as argmax), never one of `banned` (the generation config's
// suppress_tokens and repeated n-gram ends, which transformers' logits processors set to -inf).
function nextToken(logits, banned) {
  let token = -1;
  for (let v = 0; v < logits.length; v++) {
    if (!banned.has(v) && (token < 0 || logits[v] > logits[token])) token = v;
  }
  return token;
}

// How many of the generated ids are the caption: those before the first end token (all when there is none). The rule
// of show_attend_tell's caption_lengths; tests/model_card/test_web_rules.py holds them equal.
function captionLength(ids, eosTokenId) {
  const end = ids.indexOf(eosTokenId);
  return end < 0 ? ids.length : end;
}

async function caption(pixels) {
  const { height, width } = config.image;
  const encoded = await encoder.run({ pixel_values: new ort.Tensor("float32", pixels, [1, 3, height, width]) });
  let hidden = encoded.hidden, cell = encoded.cell;
  let token = config.decoder_start_token_id;
  const ids = [], attention = [];
  // Both options are absent from pages exported before the page knew them.
  const { suppress_tokens: suppressed = [], no_repeat_ngram_size: ngramSize = 0 } = config.generation;
  for (let step = 0; step < config.generation.max_new_tokens; step++) {
    const out = await decoder.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from([BigInt(token)]), [1]),
      hidden, cell, regions: encoded.regions, projected_regions: encoded.projected_regions,
    });
    hidden = out.hidden_out; cell = out.cell_out;
    const banned = new Set([...suppressed, ...repeatedNgramEnds([config.decoder_start_token_id, ...ids], ngramSize)]);
    token = nextToken(out.logits.data, banned);
    ids.push(token);
    attention.push(Float32Array.from(out.alpha.data));
    if (captionLength(ids, config.eos_token_id) < ids.length) break; // the caption ended
  }
  const special = new Set(config.special_token_ids);
  const words = [], maps = [];
  for (let i = 0; i < captionLength(ids, config.eos_token_id); i++) {
    if (special.has(ids[i])) continue;
    words.push(config.vocab[ids[i]].replaceAll("\u2581", " ").trim());
    maps.push(attention[i]);
  }
  const text = config.segmentation === "character"
    ? words.join("").split(/\s+/).filter(Boolean).join(" ")
    : words.join(" ").split(/\s+/).filter(Boolean).join(" ");
  return { ids, words, maps, caption: text };
}

// The photo darkened where a word's attention is low (the grid upsampled smoothly by the canvas).
function drawOverlay(canvas, bitmap, map) {
  const [gh, gw] = config.grid;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  if (!map) return;
  const grid = document.createElement("canvas");
  grid.width = gw; grid.height = gh;
  const cells = grid.getContext("2d").createImageData(gw, gh);
  const peak = Math.max(...map);
  for (let i = 0; i < gw * gh; i++) {
    cells.data[4 * i + 3] = Math.round(255 * 0.8 * (1 - (peak > 0 ? map[i] / peak : 0)));
  }
  grid.getContext("2d").putImageData(cells, 0, 0);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(grid, 0, 0, canvas.width, canvas.height);
  canvas.dataset.overlay = "drawn";
}

function fit(bitmap, side) {
  const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
  return [Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale))];
}

async function onFile(file) {
  statusLine.textContent = "Captioning...";
  const started = performance.now();
  const { bitmap, rgba } = await decode(file);
  const pixels = preprocess(rgba, bitmap.width, bitmap.height);
  const result = await caption(pixels);
  const photo = document.getElementById("photo");
  [photo.width, photo.height] = fit(bitmap, 448);
  drawOverlay(photo, bitmap, null);
  const captionLine = document.getElementById("caption");
  captionLine.replaceChildren();
  const panels = document.getElementById("panels");
  panels.replaceChildren();
  result.words.forEach((word, index) => {
    const span = document.createElement("span");
    span.textContent = word;
    const show = () => {
      captionLine.querySelectorAll("span").forEach((s) => s.classList.toggle("active", s === span));
      drawOverlay(photo, bitmap, result.maps[index]);
    };
    span.addEventListener("mouseenter", show);
    span.addEventListener("click", show);
    captionLine.append(span, " ");
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.className = "panel";
    [canvas.width, canvas.height] = fit(bitmap, PANEL_SIDE);
    drawOverlay(canvas, bitmap, result.maps[index]);
    const label = document.createElement("figcaption");
    label.textContent = word;
    figure.append(canvas, label);
    panels.append(figure);
  });
  captionLine.dataset.caption = result.caption;
  window.satLast = { caption: result.caption, words: result.words, ids: result.ids, maps: result.maps.map((map) => Array.from(map)),
                     pixels, seconds: (performance.now() - started) / 1000 };
  statusLine.textContent = `Done in ${window.satLast.seconds.toFixed(2)} s.`;
  document.body.dataset.state = "captioned";
}

document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) onFile(file).catch((error) => { statusLine.textContent = "Error: " + error.message; console.error(error); });
});

loadModel().then(
  () => { statusLine.textContent = "Model ready: choose a photo."; document.body.dataset.state = "ready"; },
  (error) => { statusLine.textContent = "Could not load the model: " + error.message; console.error(error); },
);
