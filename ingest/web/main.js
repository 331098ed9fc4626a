// The page: asks for the key once, then routes #/upload, #/jobs, #/job/ID and #/uniquify.
import { forgetKey, getJson, getKey, runStream, setKey } from "./api.js";
import { setupJob, showJob } from "./job.js";
import { setupJobs, showJobs } from "./jobs.js";
import { setupUniquify } from "./uniquify.js";
import { setupUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["key", "upload", "job", "uniquify", "jobs"];
let streaming = false;

function reveal(name) {
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("here", a.id === `nav-${name}`));
}

async function route() {
  if (!getKey()) return reveal("key");
  const [, name = "upload", id] = location.hash.split("/");
  reveal(VIEWS.includes(name) ? name : "upload");
  if (name === "job") await showJob(id);
  if (name === "jobs") await showJobs();
}

// A key is checked by one call before it is kept.
async function useKey(event) {
  event.preventDefault();
  setKey($("key-input").value.trim());
  try {
    await getJson("/v1/jobs?limit=1");
  } catch (error) {
    forgetKey();
    $("key-error").textContent = `${error.message} (${error.code})`;
    return;
  }
  $("key-input").value = "";
  $("key-error").textContent = "";
  start();
}

function start() {
  $("change-key").hidden = false;
  if (!streaming) {
    streaming = true;
    runStream().finally(() => { streaming = false; });
  }
  route();
}

function askForKey() {
  forgetKey();
  $("change-key").hidden = true;
  reveal("key");
}

$("key-form").addEventListener("submit", useKey);
$("change-key").addEventListener("click", askForKey);
window.addEventListener("medialane:unauthorized", askForKey);
window.addEventListener("hashchange", () => route().catch((error) => console.warn(error.message)));
setupUpload();
setupJob();
setupUniquify();
setupJobs();
if (getKey()) start();
else reveal("key");
