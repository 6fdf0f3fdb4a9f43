// rsvlm web app: plain JavaScript modules against the REST API of `rsvlm serve`; no framework, no build step, and
// nothing fetched from anywhere but this server. This module holds the current image, search, and start-up.
import { ApiError, api, getJson, imageFrom, postJson, setTabToken } from "./api.js";
import { $, baseName, busy, el, percent, showMessage } from "./dom.js";
import { drawFootprints, highlight } from "./footprints.js";
import { forgetJobRows, refreshJobs, submitJob } from "./jobs.js";

const BROWSER_IMAGES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"];
const BBOX = ["bbox-w", "bbox-s", "bbox-e", "bbox-n"];
const state = { image: null, previewUrl: null, index: null };

// ---------- the current image: classify, caption, ask ----------

function setImage(file, description) {
  state.image = file;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = null;
  const preview = $("image-preview");
  if (BROWSER_IMAGES.includes(file.type)) {
    state.previewUrl = URL.createObjectURL(file);
    preview.src = state.previewUrl;
    preview.hidden = false;
  } else {
    preview.removeAttribute("src"); // a GeoTIFF or JPEG 2000: the server reads it, the browser cannot show it
    preview.hidden = true;
  }
  $("image-name").textContent = `${description || file.name} (${Math.max(1, Math.round(file.size / 1024))} KiB)`;
  for (const id of ["classify-results", "caption-result", "answer"]) $(id).replaceChildren();
}

function imageForm() {
  if (!state.image) throw new ApiError(0, "no image yet (choose a file above, or use a search hit)");
  const form = new FormData();
  form.append("image", state.image, state.image.name);
  return form;
}

function barRow({ label, probability }) {
  const row = el("li", { "data-testid": "classify-row", "data-label": label });
  const bar = el("span", { class: "bar", "aria-hidden": "true" });
  const fill = el("span");
  fill.style.width = `${Math.max(0, Math.min(1, probability)) * 100}%`;
  bar.append(fill);
  row.append(el("span", { class: "label" }, label), bar, el("span", { class: "value" }, percent(probability)));
  return row;
}

async function classify() {
  const form = imageForm();
  form.append("labels", $("labels").value);
  const result = await getJson("api/classify", { method: "POST", body: form });
  $("classify-results").replaceChildren(...result.labels.map(barRow));
}

async function caption() {
  $("caption-result").textContent = "";
  const result = await getJson("api/caption", { method: "POST", body: imageForm() });
  $("caption-result").textContent = result.caption;
}

async function ask() {
  const form = imageForm();
  form.append("question", $("question").value);
  $("answer").textContent = "";
  const result = await getJson("api/ask", { method: "POST", body: form });
  $("answer").textContent = result.answer;
}

// ---------- search ----------

function filters() {
  const sides = BBOX.map((id) => $(id).value.trim());
  let bbox = null;
  if (sides.some((v) => v !== "")) {
    if (sides.some((v) => v === "" || !Number.isFinite(Number(v)))) {
      throw new ApiError(0, "area: give all of West, South, East and North in degrees, or clear them");
    }
    bbox = sides.map(Number);
  }
  const from = $("time-from").value;
  const to = $("time-to").value;
  const time = from || to ? `${from || ".."}/${to || ".."}` : null;
  const k = Number($("search-k").value || 12);
  if (!Number.isInteger(k) || k < 1 || k > 200) throw new ApiError(0, "k: give a whole number from 1 to 200");
  return { k, bbox, time };
}

async function searchText() {
  const text = $("search-text").value;
  showHits(await postJson("api/search", { text, ...filters() }), `“${text}”`);
}

async function searchImage() {
  const { k, bbox, time } = filters();
  const form = imageForm();
  form.append("k", String(k));
  if (bbox) form.append("bbox", bbox.join(","));
  if (time) form.append("time", time);
  showHits(await getJson("api/search/image", { method: "POST", body: form }), state.image.name);
}

function showHits(result, what) {
  const how = result.exact ? "exact" : `approximate, ${result.candidates} candidates`;
  const took = Number(result.took_ms).toFixed(0);
  $("search-summary").textContent = `${result.hits.length} hits for ${what} in ${took} ms (${how})`;
  $("search-results").replaceChildren(...result.hits.map(hitCard));
  drawFootprints($("footprints"), result.hits, (state.index && state.index.scenes) || []);
}

function hitCard(hit, i) {
  const name = hit.label || baseName(hit.path);
  const card = el("article", { class: "card", "data-testid": "hit", "data-hit": i, "data-id": hit.id });
  const use = el("button", { type: "button", class: "secondary", "data-testid": "hit-use" }, "Use as image");
  use.addEventListener("click", () => useHit(hit, use));
  const thumb = imageFrom(hit.thumbnail, { alt: `search hit ${i + 1}: ${name}`, "data-testid": "hit-thumbnail" });
  thumb.title = "Use as the current image";
  thumb.addEventListener("click", () => useHit(hit, use));
  const meta = el("div", { class: "meta" });
  const score = el("span", { class: "score", "data-testid": "hit-score" }, hit.score.toFixed(3));
  meta.append(el("span", {}, `#${i + 1}`), score);
  const where = hit.window ? ` [${hit.window.join(", ")}]` : "";
  const path = el("div", { class: "path" }, `${baseName(hit.path)}${where}`);
  card.append(thumb, meta, el("div", {}, hit.label || ""), path);
  if (hit.datetime) card.append(el("div", { class: "path" }, hit.datetime));
  card.append(use);
  card.addEventListener("mouseenter", () => highlight(i, true));
  card.addEventListener("mouseleave", () => highlight(i, false));
  return card;
}

function useHit(hit, button) {
  return busy(button, "Use search hit", async () => {
    const blob = await (await api(hit.thumbnail)).blob();
    const file = new File([blob], `item-${hit.id}.png`, { type: blob.type || "image/png" });
    $("image-file").value = "";
    setImage(file, `search hit ${hit.id}: ${hit.label || baseName(hit.path)}`);
    document.getElementById("image-title").scrollIntoView({ block: "start" });
  });
}

// ---------- start-up ----------

function describeIndex(info) {
  const parts = [`${info.count} items`, `${(info.scenes || []).length} scenes`];
  if (info.model) parts.push(`model ${info.model.name || JSON.stringify(info.model)}`);
  if (info.bounds) parts.push(`bounds ${info.bounds.map((v) => Number(v).toFixed(3)).join(", ")}`);
  if (info.time) parts.push(`time ${info.time.map((t) => t || "…").join(" to ")}`);
  return `Index: ${parts.join(" · ")}`;
}

async function start() {
  try {
    const health = await getJson("api/health");
    const chat = health.chat ? `chat ${health.chat}` : "chat off";
    const index = health.index ? `index ${health.index.count} items` : "no index";
    $("health").textContent = `rsvlm ${health.version} · model ${health.model} · ${chat} · ${index}`;
    $("health").dataset.status = health.status;
    if (health.index) {
      state.index = await getJson("api/index");
      $("index-info").textContent = describeIndex(state.index);
    } else {
      $("index-info").textContent = "This server has no index: start it with rsvlm serve --index PATH to search.";
    }
    await refreshJobs();
  } catch (err) {
    $("health").textContent = "not connected";
    showMessage(`Start: ${err.message}${err.status ? ` (HTTP ${err.status})` : ""}`, "error");
  }
}

function onSubmit(form, button, what, fn) {
  $(form).addEventListener("submit", (event) => {
    event.preventDefault();
    busy($(button), what, fn);
  });
}

function wire() {
  $("message-close").addEventListener("click", () => {
    $("message").hidden = true;
  });
  $("token-panel").addEventListener("submit", (event) => {
    event.preventDefault();
    setTabToken($("token").value.trim());
    $("token-panel").hidden = true;
    $("message").hidden = true;
    forgetJobRows();
    start();
  });
  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    if (file) setImage(file);
  });
  onSubmit("classify-form", "classify", "Classify", classify);
  onSubmit("ask-form", "ask", "Ask", ask);
  onSubmit("search-form", "search", "Search", searchText);
  onSubmit("job-form", "job-submit", "Submit job", submitJob);
  $("caption").addEventListener("click", () => busy($("caption"), "Caption", caption));
  $("search-image").addEventListener("click", () => busy($("search-image"), "Search by image", searchImage));
  $("bbox-index").addEventListener("click", () => {
    const bounds = state.index && state.index.bounds;
    if (!bounds) return showMessage("The index has no bounds (no georeferenced items).", "info");
    BBOX.forEach((id, k) => {
      $(id).value = String(bounds[k]);
    });
  });
  $("bbox-clear").addEventListener("click", () => {
    for (const id of BBOX) $(id).value = "";
  });
}

wire();
start();
