// The API key, API calls with it in a header, previews as blobs, and the live job stream.
const KEY = "medialane.key";

export const getKey = () => localStorage.getItem(KEY);
export const setKey = (key) => localStorage.setItem(KEY, key);
export const forgetKey = () => localStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code ? body.code : "http_error";
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A call with the key; 429 and 503 are waited out as their Retry-After says (the API asks for that).
export async function call(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, { ...options, headers: { ...options.headers, "X-API-Key": getKey() } });
    if ((response.status === 429 || response.status === 503) && attempt < 20) {
      await sleep(1000 * Number(response.headers.get("Retry-After") || 1));
      continue;
    }
    if (!response.ok) {
      throw new ApiError(response.status, await response.json().catch(() => null));
    }
    return response;
  }
}

export const getJson = async (path) => (await call(path)).json();

const previews = new Map();
// An object URL of the job's preview, fetched once with the key (an <img src> could not send it).
export function previewUrl(jobId) {
  if (!previews.has(jobId)) {
    previews.set(jobId, call(`/v1/jobs/${jobId}/preview`).then(async (r) => URL.createObjectURL(await r.blob())));
  }
  return previews.get(jobId);
}

export const terminal = (view) => ["completed", "partial", "failed"].includes(view.status);

// The live stream: one streaming fetch of /v1/events (key in a header) for every job on the page.
// It follows the jobs this key makes while it is open, and on reconnecting resumes the unfinished ones.
const listeners = new Set();
const unfinished = new Set();
let generation = 0;
let connected = null;
let markConnected;
resetConnected();

function resetConnected() {
  connected = new Promise((resolve) => { markConnected = resolve; });
}

export const onJob = (listener) => listeners.add(listener);
export const offJob = (listener) => listeners.delete(listener);
// Resolves with the stream's generation once it follows new jobs: submit after this, and none is missed.
export const streamReady = () => connected;
export const streamGeneration = () => generation;

// The latest document of every job seen, for views that learn a job id after its first events.
export const latest = new Map();

export function publish(view) {
  latest.set(view.job_id, view);
  if (terminal(view)) unfinished.delete(view.job_id);
  else unfinished.add(view.job_id);
  listeners.forEach((listener) => listener(view));
}

// A job submitted while the stream was reconnecting may have been missed: read it once.
export async function follow(jobId, submittedIn) {
  if (latest.has(jobId)) return;
  unfinished.add(jobId);
  if (submittedIn !== generation) publish(await getJson(`/v1/jobs/${jobId}`));
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return data.length ? { event, data: JSON.parse(data.join("\n")) } : null;
}

async function readStream(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed && parsed.event === "ready") markConnected(++generation);
      else if (parsed && parsed.event === "job") publish(parsed.data);
    }
  }
}

// Jobs gone since (deleted) make the stream refuse its ids: each is read once and dropped.
async function dropMissing() {
  for (const jobId of [...unfinished]) {
    try {
      publish(await getJson(`/v1/jobs/${jobId}`));
    } catch (error) {
      unfinished.delete(jobId);
    }
  }
}

export async function runStream() {
  for (;;) {
    try {
      const ids = [...unfinished].slice(-100).join(",");
      const response = await fetch(`/v1/events?ids=${ids}`, { headers: { "X-API-Key": getKey() } });
      if (response.status === 401) {
        window.dispatchEvent(new Event("medialane:unauthorized"));
        return;
      }
      if (response.status === 404) await dropMissing();
      else if (response.ok) await readStream(response);
    } catch (error) {
      // The connection dropped: reconnect below.
    }
    resetConnected();
    await sleep(1000);
  }
}
