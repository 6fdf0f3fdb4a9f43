// Search-hit footprints: over each indexed scene's overview PNG (a tile's pixel window is exact there), and on a
// plain longitude/latitude frame for hits outside every scene. Drawn as inline SVG: no map library, no tiles.
import { imageFrom } from "./api.js";
import { baseName, el, svgEl } from "./dom.js";

// Card and footprint of hit i light up together.
export function highlight(i, on) {
  for (const node of document.querySelectorAll(`[data-hit="${i}"]`)) node.classList.toggle("active", on);
}

// Every [lon, lat] of a GeoJSON geometry, ring by ring.
function rings(geometry) {
  if (!geometry) return [];
  const c = geometry.coordinates;
  switch (geometry.type) {
    case "Point":
      return [[c]];
    case "MultiPoint":
    case "LineString":
      return [c];
    case "Polygon":
    case "MultiLineString":
      return c;
    case "MultiPolygon":
      return c.flat();
    default:
      return [];
  }
}

function extent(points) {
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

const inside = (lon, lat, b) => lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3];

// The scene a hit lies in: the one of the same file, else the one whose WGS84 bounds hold the footprint's centre.
function sceneOf(hit, scenes) {
  const byPath = scenes.findIndex((s) => s.path === hit.path);
  if (byPath >= 0) return byPath;
  const points = rings(hit.geometry).flat();
  if (!points.length) return -1;
  const [w, s, e, n] = extent(points);
  return scenes.findIndex((sc) => sc.bounds && inside((w + e) / 2, (s + n) / 2, sc.bounds));
}

function shapePath(ringList, project) {
  const ring = (points) => points.map((p, j) => `${j ? "L" : "M"}${project(p).map((v) => v.toFixed(2)).join(" ")}`);
  return ringList.map((points) => `${ring(points).join("")}Z`).join("");
}

function addShape(svg, hit, i, project, rect, fontSize) {
  let shape;
  let anchor;
  if (rect) {
    const [x, y, w, h] = rect;
    shape = svgEl("rect", { x, y, width: w, height: h });
    anchor = [x + fontSize / 4, y + fontSize];
  } else {
    const list = rings(hit.geometry);
    const points = list.flat();
    if (points.length === 1) {
      const [x, y] = project(points[0]);
      shape = svgEl("circle", { cx: x, cy: y, r: fontSize / 2.6 });
      anchor = [x + fontSize / 2, y - fontSize / 2];
    } else {
      shape = svgEl("path", { d: shapePath(list, project) });
      const [w, , , n] = extent(points);
      anchor = project([w, n]).map((v, k) => v + (k ? fontSize : fontSize / 4));
    }
  }
  shape.setAttribute("class", "fp");
  shape.setAttribute("data-testid", "footprint");
  shape.setAttribute("data-hit", String(i));
  const title = svgEl("title");
  title.textContent = `#${i + 1} ${hit.label || baseName(hit.path)} (score ${hit.score.toFixed(3)})`;
  shape.append(title);
  shape.addEventListener("mouseenter", () => highlight(i, true));
  shape.addEventListener("mouseleave", () => highlight(i, false));
  shape.addEventListener("click", () => {
    document.querySelector(`.card[data-hit="${i}"]`)?.scrollIntoView({ block: "nearest" });
  });
  const label = svgEl("text", { x: anchor[0], y: anchor[1], class: "rank" });
  label.style.fontSize = `${fontSize}px`;
  label.style.strokeWidth = `${fontSize / 5}px`;
  label.textContent = String(i + 1);
  svg.append(shape, label);
}

function sceneFigure(scene, n, entries) {
  const name = baseName(scene.path);
  const figure = el("figure", { "data-testid": "scene-overview", "data-scene": n });
  const map = el("div", { class: "map" });
  const img = imageFrom(scene.overview || `api/index/overviews/${n}.png`, { alt: `overview of ${name}` });
  const { width, height } = scene;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img" });
  svg.setAttribute("aria-label", `footprints of ${entries.length} hits on ${name}`);
  // A footprint known only in WGS84 goes onto the overview linearly within the scene's WGS84 bounds: close, not
  // exact, for a projected scene. Tiles of this very file use their pixel window, which is exact.
  const [w, s, e, nth] = scene.bounds || [0, 0, 1, 1];
  const project = ([lon, lat]) => [((lon - w) / (e - w || 1)) * width, ((nth - lat) / (nth - s || 1)) * height];
  for (const { hit, i } of entries) {
    const exact = hit.window && hit.path === scene.path;
    addShape(svg, hit, i, project, exact ? hit.window : null, Math.max(width, height) / 28);
  }
  map.append(img, svg);
  figure.append(map, el("figcaption", {}, `${name}: ${entries.length} hits (${width} × ${height} px)`));
  return figure;
}

function niceStep(span) {
  const raw = span / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw);
}

function graticule(svg, [w, s, e, n], project, width, height) {
  const step = niceStep(Math.max(e - w, n - s));
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const line = (x1, y1, x2, y2, x, y, text) => {
    const label = svgEl("text", { x, y, class: "gratlabel" });
    label.textContent = `${text.toFixed(digits)}°`;
    svg.append(svgEl("line", { x1, y1, x2, y2, class: "grat" }), label);
  };
  for (let lon = Math.ceil(w / step) * step; lon <= e; lon += step) {
    const [x] = project([lon, n]);
    line(x, 0, x, height, x + 2, height - 3, lon);
  }
  for (let lat = Math.ceil(s / step) * step; lat <= n; lat += step) {
    const [, y] = project([w, lat]);
    line(0, y, width, y, 2, y - 2, lat);
  }
}

function lonLatFigure(entries) {
  const points = entries.flatMap(({ hit }) => rings(hit.geometry).flat());
  let [w, s, e, n] = extent(points);
  const pad = Math.max((e - w) * 0.1, (n - s) * 0.1, 0.005);
  [w, s, e, n] = [w - pad, s - pad, e + pad, n + pad];
  const squeeze = Math.cos((((s + n) / 2) * Math.PI) / 180) || 1; // a degree of longitude is shorter off the equator
  const width = 420;
  const height = Math.round(Math.min(600, Math.max(160, (width * (n - s)) / ((e - w) * squeeze))));
  const project = ([lon, lat]) => [((lon - w) / (e - w)) * width, ((n - lat) / (n - s)) * height];
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  svg.setAttribute("aria-label", `footprints of ${entries.length} hits outside the indexed scenes`);
  graticule(svg, [w, s, e, n], project, width, height);
  for (const { hit, i } of entries) addShape(svg, hit, i, project, null, 13);
  const figure = el("figure", { "data-testid": "lonlat-frame" });
  const map = el("div", { class: "map frame" });
  map.append(svg);
  const text = `${entries.length} hits outside the indexed scenes (WGS84 longitude/latitude)`;
  figure.append(map, el("figcaption", {}, text));
  return figure;
}

// Replaces the container's drawing with the footprints of these hits (index i of a hit = its card's data-hit).
export function drawFootprints(container, hits, scenes) {
  const perScene = new Map();
  const loose = [];
  let without = 0;
  hits.forEach((hit, i) => {
    const n = sceneOf(hit, scenes);
    if (n >= 0 && (hit.geometry || (hit.window && scenes[n].path === hit.path))) {
      if (!perScene.has(n)) perScene.set(n, []);
      perScene.get(n).push({ hit, i });
    } else if (rings(hit.geometry).flat().length) {
      loose.push({ hit, i });
    } else {
      without += 1;
    }
  });
  const ordered = [...perScene.entries()].sort((a, b) => a[0] - b[0]);
  const figures = ordered.map(([n, list]) => sceneFigure(scenes[n], n, list));
  if (loose.length) figures.push(lonLatFigure(loose));
  if (without) {
    const text = `${without} ${without === 1 ? "hit has" : "hits have"} no georeference, so no footprint.`;
    figures.push(el("p", { class: "empty", "data-testid": "no-footprint" }, text));
  }
  container.replaceChildren(...figures);
}
