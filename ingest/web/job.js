// A job's view: preview, stripped file, pHash and near-duplicates, uniquify result, metadata tree.
import { getJson, latest, onJob, previewUrl, terminal } from "./api.js";
import { el, statusText, when } from "./dom.js";
import { filterTree, renderTree } from "./tree.js";
import { renderUniquify } from "./uniquify.js";

let shown = null; // the job id on screen
const $ = (id) => document.getElementById(id);

function hasImage(view) {
  const { metadata, phash, strip } = view.result;
  return terminal(view) && Boolean((metadata && metadata.image) || phash || strip || view.ops.includes("uniquify"));
}

async function preview(figure, view) {
  if (!hasImage(view)) return;
  try {
    figure.replaceChildren(el("img", { src: await previewUrl(view.job_id), alt: `preview of ${view.job_id}` }));
  } catch (error) {
    figure.replaceChildren(el("figcaption", {}, `no preview: ${error.message}`));
  }
}

function strip(view) {
  const result = view.result.strip;
  if (!result) return [];
  return [
    el("h3", {}, "Stripped file"),
    el("a", { id: "strip-link", href: result.downloadUrl, download: "" }, `Download (${result.format}, ${result.size} bytes)`),
    el("p", {}, `Link expires ${when(result.expiresAt)}. Removed: ${result.removed.join(", ") || "nothing"}; kept: ${result.kept.join(", ") || "nothing"}.`),
  ];
}

async function similar(view) {
  const box = $("job-similar");
  const hashed = view.result.phash;
  if (!hashed) return box.replaceChildren();
  $("job-phash").replaceChildren(el("h3", {}, "pHash"), el("code", { id: "phash" }, hashed.phash));
  const found = await getJson(`/v1/jobs/${view.job_id}/similar?max_distance=12`);
  const cards = found.results.map((match) => {
    const figure = el("figure", { className: "card" }, el("figcaption", {},
      el("a", { href: `#/job/${match.job_id}` }, match.name), ` distance ${match.distance}`,
      match.exact_duplicate ? " (exact duplicate)" : ""));
    previewUrl(match.job_id).then((url) => figure.prepend(el("img", { src: url, alt: match.name })), () => null);
    return figure;
  });
  box.replaceChildren(el("h3", {}, `Near-duplicates (${cards.length})`),
    cards.length ? el("div", { className: "gallery" }, ...cards) : el("p", {}, "None within distance 12."));
}

function metadata(view) {
  const document = view.result.metadata || null;
  renderTree($("tree"), document);
  filterTree($("tree"), $("tree-filter").value);
  const json = JSON.stringify(view, null, 2);
  const link = $("download-json");
  URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  link.download = `${view.job_id}.json`;
  $("copy-json").onclick = async () => {
    await navigator.clipboard.writeText(json);
    $("copy-done").textContent = "copied";
  };
}

function render(view) {
  $("job-title").textContent = view.name || `Job ${view.id || view.job_id}`;
  $("job-status").textContent = `${statusText(view)} · ${view.ops.join(", ")} · created ${when(view.created_at)}`;
  $("job-status").dataset.status = view.status;
  $("job-strip").replaceChildren(...strip(view));
  $("job-phash").replaceChildren();
  renderUniquify($("job-uniquify"), view);
  metadata(view);
  if (!terminal(view)) return;
  preview($("job-preview"), view);
  similar(view).catch((error) => $("job-similar").replaceChildren(el("p", { className: "error" }, error.message)));
}

export async function showJob(jobId) {
  shown = jobId;
  for (const id of ["job-preview", "job-similar", "tree", "copy-done"]) $(id).replaceChildren();
  render(latest.get(jobId) || (await getJson(`/v1/jobs/${jobId}`)));
}

export function setupJob() {
  $("tree-filter").addEventListener("input", () => filterTree($("tree"), $("tree-filter").value));
  onJob((view) => view.job_id === shown && render(view));
}
