// The upload view: files and folders dropped or picked, URLs pasted, a row per file with live status.
import { call, follow, latest, onJob, streamReady } from "./api.js";
import { el, statusText } from "./dom.js";

const CONCURRENCY = 3;
const rows = new Map(); // job_id -> <tr>
const queue = [];
let running = 0;

function chosen(name) {
  return [...document.querySelectorAll(`#ops input[name=${name}]:checked`)].map((box) => box.value);
}

function addRow(name) {
  const status = el("td", { className: "status" }, "waiting");
  const link = el("td");
  const row = el("tr", {}, el("td", {}, name), status, link);
  document.querySelector("#rows tbody").append(row);
  return row;
}

function show(row, view) {
  const [, status, link] = row.children;
  status.textContent = statusText(view);
  status.dataset.status = view.status;
  if (!link.firstChild) link.append(el("a", { href: `#/job/${view.job_id}` }, "open"));
}

function refuse(row, error) {
  const status = row.children[1];
  status.textContent = `failed: ${error.message} (${error.code || "network"})`;
  status.dataset.status = "failed";
}

// Each upload waits for the stream to be ready, so the job's first event reaches this page.
async function send(row, body, headers = {}) {
  row.children[1].textContent = "uploading";
  try {
    const generation = await streamReady();
    const response = await call("/v1/jobs", { method: "POST", body, headers });
    const { job_id: jobId } = await response.json();
    rows.set(jobId, row);
    show(row, latest.get(jobId) || { job_id: jobId, status: "queued", percent: 0 });
    await follow(jobId, generation);
  } catch (error) {
    refuse(row, error);
  }
}

function pump() {
  while (running < CONCURRENCY && queue.length) {
    const task = queue.shift();
    running++;
    task().finally(() => {
      running--;
      pump();
    });
  }
}

function enqueue(name, makeRequest) {
  const row = addRow(name);
  queue.push(() => makeRequest(row));
  pump();
}

function ops() {
  const names = chosen("op");
  return names.length ? names : ["metadata"];
}

export function submitFile(file, path = file.name) {
  const selected = ops();
  const keep = chosen("keep");
  enqueue(path, (row) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("ops", JSON.stringify(selected));
    if (selected.includes("strip")) form.append("keep", JSON.stringify(keep));
    return send(row, form);
  });
}

function submitUrl(url) {
  const body = { url, ops: ops() };
  if (body.ops.includes("strip")) body.keep = chosen("keep");
  enqueue(url, (row) => send(row, JSON.stringify(body), { "Content-Type": "application/json" }));
}

// A dropped folder arrives as a directory entry: its files are read recursively, with their paths.
async function walk(entry, found) {
  if (entry.isFile) {
    found.push(await new Promise((resolve, reject) => entry.file((file) => resolve([entry.fullPath.slice(1), file]), reject)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, found);
    }
  }
}

async function dropped(event) {
  event.preventDefault();
  event.currentTarget.classList.remove("over");
  const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry()).filter(Boolean);
  const found = [];
  for (const entry of entries) await walk(entry, found);
  found.forEach(([path, file]) => submitFile(file, path));
}

export function setupUpload() {
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", dropped);
  for (const id of ["pick-files", "pick-folder"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      [...input.files].forEach((file) => submitFile(file, file.webkitRelativePath || file.name));
      input.value = "";
    });
  }
  document.getElementById("submit-urls").addEventListener("click", () => {
    const box = document.getElementById("urls");
    box.value.split(/\s+/).filter(Boolean).forEach(submitUrl);
    box.value = "";
  });
  onJob((view) => rows.has(view.job_id) && show(rows.get(view.job_id), view));
}
