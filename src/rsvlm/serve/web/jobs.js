// Scene jobs: submit a raster, then a row per job with a progress bar, polled every second while any job is
// queued or running (and not at all when none is), its map files linked once it is done.
import { ApiError, getJson, imageFrom, linkTo } from "./api.js";
import { $, el, percent, showError, showMessage } from "./dom.js";

const POLL_MS = 1000;
const RETRY_MS = 5000;
const rows = new Map();
let timer = null;

export async function submitJob() {
  const file = $("job-file").files[0];
  if (!file) throw new ApiError(0, "choose a raster file first");
  const form = new FormData();
  form.append("raster", file, file.name);
  const classes = $("job-classes").value.trim();
  const queries = $("job-queries").value.trim();
  if (classes) form.append("classes", classes);
  if (queries) form.append("queries", queries);
  const job = await getJson("api/jobs", { method: "POST", body: form });
  showMessage(`Job ${job.id} submitted for ${file.name}.`, "info");
  await refreshJobs();
}

function jobRow(job) {
  const name = job.input || job.id;
  const row = el("li", { class: "job", "data-testid": "job", "data-job-id": job.id });
  const head = el("div", { class: "head" });
  head.append(el("span", { class: "input" }, name), el("span", { class: "status", "data-testid": "job-status" }));
  const bar = el("progress", { "data-testid": "job-progress", "aria-label": `progress of ${name}` });
  row.append(head, bar, el("div", { class: "counts" }), el("div", { class: "error", "data-testid": "job-error" }));
  row.append(el("div", { class: "files", "data-testid": "job-files" }), el("div", { class: "shares" }));
  return row;
}

function fileItem(job, file) {
  const item = el("span", { "data-testid": "job-file-link" });
  item.append(linkTo(file.url, file.name), document.createTextNode(` (${file.kind})`));
  if (file.kind === "png") item.append(imageFrom(file.url, { alt: `${file.name} of job ${job.id}` }));
  return item;
}

function when(job) {
  const [what, time] = job.finished
    ? ["finished", job.finished]
    : job.started
      ? ["started", job.started]
      : ["queued", job.created];
  return time ? ` · ${what} ${new Date(time).toLocaleTimeString()}` : "";
}

function updateJob(row, job) {
  row.dataset.status = job.status;
  const status = row.querySelector(".status");
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  const { done = 0, total = 0 } = job.progress || {};
  const bar = row.querySelector("progress");
  if (total > 0 || job.status === "done") {
    bar.max = Math.max(total, 1);
    bar.value = job.status === "done" ? bar.max : Math.min(done, total);
  } else {
    bar.removeAttribute("value"); // indeterminate until the job knows its tile count
  }
  row.querySelector(".counts").textContent = `${done} / ${total} tiles${when(job)}`;
  row.querySelector(".error").textContent = job.error || "";
  const files = row.querySelector(".files");
  const list = job.files || [];
  if (files.childElementCount !== list.length) files.replaceChildren(...list.map((f) => fileItem(job, f)));
  const shares = job.summary && (job.summary.class_share || job.summary);
  const entries = shares ? Object.entries(shares).filter(([, v]) => typeof v === "number" && v >= 0.0005) : [];
  entries.sort((a, b) => b[1] - a[1]);
  row.querySelector(".shares").textContent = entries.map(([k, v]) => `${k} ${percent(v)}`).join(" · ");
}

function showJobs(jobs) {
  const seen = new Set(jobs.map((job) => job.id));
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  for (const job of jobs) {
    if (!rows.has(job.id)) rows.set(job.id, jobRow(job));
    updateJob(rows.get(job.id), job);
  }
  $("jobs").replaceChildren(...jobs.map((job) => rows.get(job.id))); // newest first, as the server lists them
  $("jobs-empty").hidden = jobs.length > 0;
}

// Rows are rebuilt from scratch (after a token change, so that their images load with it).
export function forgetJobRows() {
  rows.clear();
}

export async function refreshJobs() {
  clearTimeout(timer);
  timer = null;
  let next = null;
  try {
    const { jobs } = await getJson("api/jobs");
    showJobs(jobs);
    if (jobs.some((j) => j.status === "queued" || j.status === "running")) next = POLL_MS;
  } catch (err) {
    showError("Job list", err);
    if (rows.size && err.status !== 401) next = RETRY_MS; // a restarting server: try again, more slowly
  }
  if (next !== null && timer === null) timer = setTimeout(refreshJobs, next);
}
