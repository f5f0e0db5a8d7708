// The try-it page: plain JavaScript over the HTTP API (no build step).
// Upload -> POST /v1/jobs -> the job's server-sent events -> before/after.
"use strict";

const $ = (id) => document.getElementById(id);
const TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp"];
const SUBJECTS = ["person", "cat", "dog", "bird", "horse", "sheep", "cow", "car", "bicycle",
  "motorbike", "bus", "train", "boat", "aeroplane", "bottle", "chair", "sofa", "diningtable",
  "pottedplant", "tvmonitor"];
// The service's error codes, in words a person can act on.
const WORDS = {
  INVALID_IMAGE: "That file is not a picture we can read.",
  UNSUPPORTED_FORMAT: "That file is not a JPEG, PNG, WebP or BMP image.",
  IMAGE_TOO_LARGE: "That file is too large.",
  INPUT_NOT_FOUND: "The photo is gone from storage: choose it again.",
  STYLE_NOT_FOUND: "One of the paintings could not be found.",
  NO_SUBJECT_FOUND: "No person (or chosen subject) was found in the photo.",
  INVALID_REQUEST: "That request is not possible:",
  UNAUTHORIZED: "Enter a valid API key (under \u201cAPI key\u201d at the top).",
  FORBIDDEN: "This API key was revoked.",
  QUOTA_EXCEEDED: "You have reached your limit for now.",
  NOT_FOUND: "That job no longer exists.",
  TIMEOUT: "It took too long and was stopped.",
  STORAGE_UNAVAILABLE: "Storage is not reachable; try again in a moment.",
  SERVICE_BUSY: "The service is busy; try again in a moment.",
  MODEL_UNAVAILABLE: "The models are not available on the server.",
  CANCELLED: "Cancelled.",
  INTERNAL: "Something went wrong on our side.",
};
const CHANGED = "You chose another photo while the first one uploaded: press \u201cPaint it\u201d again.";
// Moments a person would time (read by the browser tests): Paint pressed, first preview shown.
const marks = (window.backdropMarks = {});
const page = { photo: null, photoUrl: "", photoKey: null, maxBytes: 25 * 1024 * 1024, job: null, stop: null, before: "" };

function apiKey() { return $("api-key").value.trim(); }
function auth(extra = {}) { return { Authorization: `Bearer ${apiKey()}`, ...extra }; }

async function failure(response) {
  let body = {};
  try { body = await response.json(); } catch (_) { /* not JSON: the status says enough */ }
  const error = body.error || { code: "INTERNAL", message: `HTTP ${response.status}` };
  return { code: error.code, message: error.message, retryAfter: response.headers.get("Retry-After") };
}

async function api(method, path, body, type = "application/json", signal = undefined) {
  const init = { method, headers: auth(body === undefined ? {} : { "Content-Type": type }), signal };
  if (body !== undefined) init.body = type === "application/json" ? JSON.stringify(body) : body;
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

function words(error) {
  const said = WORDS[error.code] || error.message || String(error);
  const detail = error.code === "INVALID_REQUEST" || !WORDS[error.code] ? ` ${error.message || ""}` : "";
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  return `${said}${detail}${wait}`.trim();
}

function say(text) { $("message").textContent = text; $("message").hidden = !text; }

function checkFile(file) {
  if (!TYPES.includes(file.type)) return `${file.name}: ${WORDS.UNSUPPORTED_FORMAT}`;
  if (file.size > page.maxBytes) return `${file.name}: ${WORDS.IMAGE_TOO_LARGE} The limit is ${Math.round(page.maxBytes / 1048576)} MB.`;
  return "";
}

function choosePhoto(file) {
  const problem = checkFile(file);
  say(problem);
  if (problem) return;
  page.photo = file;
  page.photoKey = null;
  URL.revokeObjectURL(page.photoUrl);
  page.photoUrl = URL.createObjectURL(file);
  $("photo-preview").src = page.photoUrl;
  $("photo-preview").hidden = false;
}

function addPainting(ref, label, thumb, chosen) {
  const button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-pressed", String(chosen));
  button.dataset.ref = JSON.stringify(ref);
  button.innerHTML = `<img alt=""><span></span>`;
  button.querySelector("img").src = thumb;
  button.querySelector("span").textContent = label;
  button.addEventListener("click", () =>
    button.setAttribute("aria-pressed", String(button.getAttribute("aria-pressed") !== "true")));
  $("catalog").append(button);
}

async function loadCatalog() {
  if (!apiKey()) return;
  try {
    $("catalog").replaceChildren();
    for (const style of await api("GET", "/v1/styles")) addPainting({ name: style.name }, style.name, style.thumbnail_url, false);
  } catch (error) { say(words(error)); }
}

async function uploadPainting(file) {
  const problem = checkFile(file);
  say(problem);
  if (problem) return;
  try {
    const uploaded = await api("POST", "/v1/paintings", file, file.type);
    addPainting({ key: uploaded.key }, file.name, URL.createObjectURL(file), true);
  } catch (error) { say(words(error)); }
}

function request(photoKey) {
  const mode = $("mode").value;
  const chosen = [...$("catalog").querySelectorAll("[aria-pressed=true]")].map((b) => JSON.parse(b.dataset.ref));
  const blend = $("blend").checked;
  let styles = mode === "portrait" ? [] : chosen.map((ref) => (blend ? { ...ref, blend_group: 0 } : ref));
  const body = { photo_key: photoKey, mode, subjects: [...$("subjects").selectedOptions].map((o) => o.value),
    options: { strength: Number($("strength").value), style_scale: Number($("scale").value) } };
  if ($("original").checked) body.options.output = "original";
  if (mode === "dual") { body.subject_style = styles[0]; styles = styles.slice(1); }
  body.styles = styles;
  return body;
}

function readyToGo() {
  const mode = $("mode").value, picked = $("catalog").querySelectorAll("[aria-pressed=true]").length;
  if (!page.photo) return "Choose a photo first.";
  if (mode !== "portrait" && picked < 1) return "Pick at least one painting.";
  if (mode === "dual" && picked < 2) return "Two paintings: pick one for the subject and one or more for the background.";
  if (!$("subjects").selectedOptions.length) return "Pick a subject.";
  return "";
}

async function go() {
  const problem = readyToGo();
  say(problem);
  if (problem) return;
  $("go").disabled = true;
  marks.go = performance.now();
  delete marks.preview;
  try {
    // The photo and its key are this press's: a photo chosen while this one
    // uploads must not get the first one's key (nor be painted as it).
    const photo = page.photo;
    const key = page.photoKey || (await api("POST", "/v1/photos", photo, photo.type)).key;
    if (page.photo !== photo) { say(CHANGED); return; }
    page.photoKey = key;
    const accepted = await api("POST", "/v1/jobs", request(key));
    // The cards' own copy of the photo: choosing another revokes the preview's.
    watch(accepted.job_id, accepted.outputs, URL.createObjectURL(photo));
  } catch (error) { say(words(error)); } finally { $("go").disabled = false; }
}

function cards(count, before) {
  $("results").replaceChildren();
  for (let i = 0; i < count; i++) {
    const card = $("result-card").content.firstElementChild.cloneNode(true);
    card.querySelector(".before").src = before;
    const name = count > 1 ? `Picture ${i + 1}` : "Your picture";
    card.querySelector(".name").textContent = name;
    card.querySelector("progress").setAttribute("aria-label", `${name}: progress`);
    card.querySelector(".slider").setAttribute("aria-label", `${name}: before and after`);
    const slider = card.querySelector(".slider");
    slider.addEventListener("input", () => {
      card.querySelector(".after").style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    });
    $("results").append(card);
  }
}

function swapImage(img, url, stage) {
  // Load first, then swap: the picture on screen never goes blank between stages.
  if (!url || img.dataset.url === url.split("?")[0]) return;
  img.dataset.url = url.split("?")[0];
  const next = new Image();
  next.onload = () => {
    img.src = url;
    img.dataset.shown = stage;
    if (stage === "preview" && marks.preview === undefined) marks.preview = performance.now();
  };
  next.src = url;
}

const STAGES = { QUEUED: "Waiting for a painter\u2026", RUNNING: "Painting\u2026", SUCCEEDED: "Done", PARTIAL: "Done", CANCELLED: "Cancelled", FAILED: "Failed" };

function show(status) {
  $("job-state").textContent = `${STAGES[status.state] || status.state}${status.error ? ` ${words(status.error)}` : ""}`;
  $("cancel").hidden = ["SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"].includes(status.state);
  status.styles.forEach((style, i) => {
    const card = $("results").children[i];
    if (!card) return;
    card.querySelector("progress").value = style.progress;
    const shown = style.result_url ? "final" : style.latest_url ? "latest" : style.preview_url ? "preview" : "";
    card.dataset.stage = shown;
    swapImage(card.querySelector(".after"), style.result_url || style.latest_url || style.preview_url, shown);
    const stage = style.error ? words(style.error) : style.result_url ? "Done"
      : shown === "preview" ? `Quick preview; painting ${style.progress}%` : `${STAGES[style.state] || ""} ${style.progress}%`;
    card.querySelector(".stage").textContent = stage;
    card.classList.toggle("failed", Boolean(style.error));
    card.dataset.state = style.state;
    const link = card.querySelector(".download");
    if (style.result_url) { link.href = style.result_url; link.hidden = false; }
  });
}

async function follow(jobId, signal) {
  // EventSource cannot send the API key in a header: read the stream with fetch.
  const response = await fetch(`/v1/jobs/${jobId}/events`, { headers: auth(), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data && !signal.aborted) show((last = JSON.parse(data)));
    }
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const stop = () => { clearTimeout(timer); reject(signal.reason); };
    const timer = setTimeout(() => { signal.removeEventListener("abort", stop); resolve(); }, ms);
    signal.addEventListener("abort", stop, { once: true });
  });
}

async function watch(jobId, outputs, before) {
  if (page.stop) page.stop.abort();
  page.job = jobId;
  document.body.dataset.job = jobId;
  page.stop = new AbortController();
  // This job's own signal: once another job is watched, nothing of this one
  // (its stream, its polls) is drawn into the new job's cards.
  const signal = page.stop.signal;
  $("results-section").hidden = false;
  URL.revokeObjectURL(page.before);
  page.before = before;
  cards(outputs, before);
  try {
    let last = await follow(jobId, signal);
    while (!last || !["SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"].includes(last.state)) {
      await pause(2000, signal); // the stream ended early: poll
      last = await api("GET", `/v1/jobs/${jobId}`, undefined, undefined, signal);
      if (signal.aborted) return;
      show(last);
    }
  } catch (error) { if (error.name !== "AbortError" && !signal.aborted) say(words(error)); }
}

async function cancel() {
  const jobId = page.job;
  if (!jobId) return;
  try {
    const status = await api("DELETE", `/v1/jobs/${jobId}`);
    if (page.job === jobId) show(status); // not into the cards of a job painted since
  } catch (error) { say(words(error)); }
}

function wireDrop() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) choosePhoto(e.dataTransfer.files[0]); });
}

const KEY_QUESTION = "This link carries a different API key from the one this browser keeps. "
  + "Photos you upload would go to that key's owner. Use the link's key?";

async function start() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromLink) {
    // The key decides whose account gets the photos: a link from someone else
    // must not swap theirs in for the one this browser keeps without asking.
    const kept = localStorage.getItem("backdrop-key");
    if (!kept || kept === fromLink || confirm(KEY_QUESTION)) localStorage.setItem("backdrop-key", fromLink);
    history.replaceState(null, "", location.pathname);
  }
  $("api-key").value = localStorage.getItem("backdrop-key") || "";
  $("key-box").open = !apiKey();
  $("api-key").addEventListener("change", () => { localStorage.setItem("backdrop-key", apiKey()); loadCatalog(); });
  for (const s of SUBJECTS) $("subjects").add(new Option(s, s, s === "person", s === "person"));
  for (const [input, out, digits] of [["strength", "strength-out", 2], ["scale", "scale-out", 2]]) {
    $(input).addEventListener("input", () => { $(out).textContent = Number($(input).value).toFixed(digits); });
  }
  $("photo").addEventListener("change", (e) => e.target.files[0] && choosePhoto(e.target.files[0]));
  $("painting").addEventListener("change", (e) => e.target.files[0] && uploadPainting(e.target.files[0]));
  $("go").addEventListener("click", go);
  $("cancel").addEventListener("click", cancel);
  wireDrop();
  try {
    page.maxBytes = (await (await fetch("/v1/limits")).json()).max_upload_bytes;
    $("max-mb").textContent = Math.round(page.maxBytes / 1048576);
  } catch (_) { /* the default limit stands */ }
  await loadCatalog();
}

start();
