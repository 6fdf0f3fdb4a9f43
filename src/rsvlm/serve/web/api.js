// Requests to the rsvlm REST API: the token (cookie from /?token=T, or Bearer kept in this tab) and the JSON
// error body {"error": {"status", "message"}} turned into an ApiError whose message the page shows as it is.
import { $, el, showError } from "./dom.js";

const TOKEN_KEY = "rsvlm.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const tabToken = () => sessionStorage.getItem(TOKEN_KEY);

export function setTabToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

async function errorMessage(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return String(body.error.message);
    if (body && body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    // not JSON (a proxy's page, say): the status line below
  }
  const short = text && text.length < 200 && !text.trim().startsWith("<") ? `: ${text.trim()}` : "";
  return `${response.statusText || "request failed"}${short}`;
}

// The response when it is 2xx; else an ApiError. A 401 also opens the token field.
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = tabToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, `the server at ${location.host} did not answer (is rsvlm serve still running?)`);
  }
  if (response.status === 401) $("token-panel").hidden = false;
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

export const getJson = async (path, options) => (await api(path, options)).json();

export const postJson = (path, body) =>
  getJson(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// An <img> or a link carries only the cookie; with a token kept in this tab, images and downloads go through fetch.
export function imageFrom(url, attrs) {
  const img = el("img", attrs);
  if (!tabToken()) {
    img.src = url;
    return img;
  }
  api(url)
    .then((response) => response.blob())
    .then((blob) => {
      img.src = URL.createObjectURL(blob);
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
    })
    .catch((err) => {
      img.alt = `${img.alt} (${err.message})`;
    });
  return img;
}

export function linkTo(url, name) {
  const link = el("a", { href: url, download: name }, name);
  link.addEventListener("click", (event) => {
    if (!tabToken()) return;
    event.preventDefault();
    api(url)
      .then((response) => response.blob())
      .then((blob) => {
        const local = el("a", { href: URL.createObjectURL(blob), download: name });
        local.click();
        setTimeout(() => URL.revokeObjectURL(local.href), 60000);
      })
      .catch((err) => showError(`Download ${name}`, err));
  });
  return link;
}
