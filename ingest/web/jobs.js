// The key's jobs, newest first, filtered by status and op, a page at a time; rows follow the stream.
import { getJson, onJob } from "./api.js";
import { el, statusText, when } from "./dom.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
let cursor = null;
const rows = new Map(); // job_id -> {view, tr}

function matches(view) {
  const status = $("filter-status").value;
  const op = $("filter-op").value;
  return (!status || view.status === status) && (!op || view.ops.includes(op));
}

function row(view) {
  const status = el("td", { className: "status" }, statusText(view));
  status.dataset.status = view.status;
  const tr = el("tr", {}, el("td", {}, when(view.created_at)),
    el("td", {}, el("a", { href: `#/job/${view.job_id}` }, view.name || view.id || view.job_id)),
    el("td", {}, view.ops.join(", ")), status);
  tr.hidden = !matches(view);
  return tr;
}

async function more() {
  const page = await getJson(`/v1/jobs?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
  for (const view of page.jobs) {
    const tr = row(view);
    rows.set(view.job_id, { view, tr });
    $("jobs").tBodies[0].append(tr);
  }
  cursor = page.next_cursor;
  $("jobs-more").hidden = !cursor;
}

export async function showJobs() {
  rows.clear();
  cursor = null;
  $("jobs").tBodies[0].replaceChildren();
  await more();
}

function refilter() {
  for (const { view, tr } of rows.values()) tr.hidden = !matches(view);
}

export function setupJobs() {
  $("filter-status").addEventListener("change", refilter);
  $("filter-op").addEventListener("change", refilter);
  $("jobs-refresh").addEventListener("click", showJobs);
  $("jobs-more").addEventListener("click", more);
  onJob((view) => {
    const shown = rows.get(view.job_id);
    if (!shown) return;
    const tr = row(view);
    shown.tr.replaceWith(tr);
    rows.set(view.job_id, { view, tr });
  });
}
