// Uniquify: imgfactory's parameters as a form, the job's progress by percent, its zip and manifest.
import { call, follow, latest, onJob, streamReady } from "./api.js";
import { el, statusText, when } from "./dom.js";

const CHOICES = {
  names: ["hashed", "sequential", "original name"],
  folders: ["one folder", "a folder per image", "a folder per copy number"],
  flip: ["none", "horizontal", "vertical", "both"],
  exif: ["removed", "a random camera's", "like the source's"],
};
// [name, default enabled, min, max, lower bound, upper bound]
const RANGES = [
  ["rotate", true, 0, 2, -45, 45],
  ["crop", false, 1, 5, 0, 40],
  ["saturation", true, 90, 110, 0, 300],
  ["brightness", true, 90, 110, 0, 300],
  ["contrast", true, 1, 15, 0, 100],
];
let current = null; // the job the form started

const number = (name, value, min, max, step = 1) =>
  el("input", { type: "number", name, value, min, max, step, required: value !== "" });

function buildForm(form) {
  const select = (name) => el("select", { name }, ...CHOICES[name].map((text, i) => el("option", { value: i }, text)));
  form.append(
    el("label", {}, "Images ", el("input", { type: "file", name: "images", multiple: true, accept: "image/*", required: true })),
    el("label", {}, "Copies of each ", number("copies", 10, 1, 1000)),
    ...Object.keys(CHOICES).map((name) => el("label", {}, `${name} `, select(name))),
    ...RANGES.map(([name, on, min, max, low, high]) => el("fieldset", {}, el("legend", {}, name),
      el("label", {}, el("input", { type: "checkbox", name: `${name}.enable`, checked: on }), " on"),
      el("label", {}, " min ", number(`${name}.min`, min, low, high, "any")),
      el("label", {}, " max ", number(`${name}.max`, max, low, high, "any")),
      name === "crop" ? el("label", {}, " sides ", el("select", { name: "crop.side" },
        ...["one", "two", "all four", "random"].map((text, i) => el("option", { value: i, selected: i === 1 }, text)))) : null)),
    el("label", {}, "JPEG quality (blank: the source's) ", number("quality", "", 1, 100)),
    el("label", {}, "Seed (blank: random) ", el("input", { type: "number", name: "seed", min: 0 })),
    el("button", { type: "submit" }, "Uniquify"),
  );
}

function params(form) {
  const data = new FormData(form);
  const query = new URLSearchParams();
  for (const name of ["copies", ...Object.keys(CHOICES), "quality", "seed"]) {
    if (data.get(name) !== "") query.set(name, data.get(name));
  }
  for (const [name] of RANGES) {
    const range = { enable: data.has(`${name}.enable`), min: Number(data.get(`${name}.min`)), max: Number(data.get(`${name}.max`)) };
    if (name === "crop") range.side = Number(data.get("crop.side"));
    query.set(name, JSON.stringify(range));
  }
  return query;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const box = document.getElementById("uniquify-progress");
  const body = new FormData();
  for (const file of form.elements.images.files) body.append("images", file, file.name);
  try {
    const generation = await streamReady();
    const response = await call(`/v1/uniquify?${params(form)}`, { method: "POST", body });
    current = (await response.json()).job_id;
    renderUniquify(box, latest.get(current) || { job_id: current, status: "queued", percent: 0, ops: ["uniquify"], result: {} });
    await follow(current, generation);
  } catch (error) {
    box.replaceChildren(el("p", { className: "error" }, `${error.message} (${error.code || "network"})`));
  }
}

function manifest(copies) {
  const head = el("tr", {}, ...["path", "source", "copy", "size", "width × height", "pHash distance", "transforms"].map((t) => el("th", {}, t)));
  const rows = copies.map((c) => el("tr", {},
    el("td", {}, c.path), el("td", {}, c.source), el("td", {}, c.copy), el("td", {}, c.size),
    el("td", {}, `${c.width} × ${c.height}`), el("td", {}, c.phash_distance), el("td", {}, el("code", {}, JSON.stringify(c.transforms)))));
  return el("table", { className: "manifest" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

// A uniquify job's progress, or once done its zip and manifest; nothing for jobs of other ops.
export function renderUniquify(container, view) {
  if (!view.ops.includes("uniquify")) return container.replaceChildren();
  const bar = el("progress", { max: 100, value: view.percent });
  const parts = [el("h3", {}, "Uniquify"), el("p", { className: "status" }, bar, ` ${statusText(view)}`)];
  parts[1].dataset.status = view.status;
  const result = view.result.uniquify;
  if (result) {
    parts.push(
      el("p", {}, el("a", { id: "zip-link", href: result.downloadUrl, download: "" }, `Download the zip (${result.files} files, ${result.size} bytes)`),
        ` · expires ${when(result.expiresAt)}`),
      result.failed.length ? el("p", { className: "error" }, `${result.failed.length} copies failed`) : null,
      manifest(result.list),
    );
  }
  container.replaceChildren(...parts.filter(Boolean));
}

export function setupUniquify() {
  const form = document.getElementById("uniquify-form");
  buildForm(form);
  form.addEventListener("submit", submit);
  onJob((view) => view.job_id === current && renderUniquify(document.getElementById("uniquify-progress"), view));
}
