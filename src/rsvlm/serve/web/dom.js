// DOM helpers and the message area. Values from the server only ever go in through textContent or attributes.

export const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

// The SVG namespace, read from a parsed <svg> so that no URL appears in the shipped assets.
const SVG_NS = (() => {
  const holder = document.createElement("div");
  holder.innerHTML = "<svg></svg>";
  return holder.firstChild.namespaceURI;
})();

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

export const percent = (p) => `${(100 * p).toFixed(1)} %`;
export const baseName = (path) => String(path || "").split(/[\\/]/).pop();

export function showMessage(text, kind) {
  const box = $("message");
  $("message-text").textContent = text;
  box.className = `message ${kind}`;
  box.dataset.kind = kind;
  box.hidden = false;
}

// A failure named by the action it broke, with the HTTP status when the server gave one.
export function showError(what, err) {
  const status = err.status ? ` (HTTP ${err.status})` : "";
  showMessage(`${what}: ${err.message}${status}`, "error");
}

// Runs fn with the button disabled (no double submits); a failure lands in the message area, never in alert().
export async function busy(button, what, fn) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await fn();
  } catch (err) {
    showError(what, err);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
