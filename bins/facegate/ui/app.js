// FaceGate's page: sign in with an API key, then enrol, verify with the
// head-turn challenge, identify live, and administer, as the key's scopes
// allow. Plain modules, no build step, nothing from outside this server;
// every value from the server is written as text, never as HTML.

const KEY = "facegate.key";
const $ = (id) => document.getElementById(id);

// ---- the API ---------------------------------------------------------------

function key() {
  return sessionStorage.getItem(KEY);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.error || "error";
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${key()}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  const text = await res.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

// What a person reads for the API's error codes.
const WORDS = {
  no_face: "No face was found. Face the camera in good light.",
  multiple_faces: "More than one face is in view. Only the person should be in the picture.",
  low_quality: "The photo is not good enough (too small, cut off, blurred or too dark). Come closer, face the camera, hold still.",
  liveness_failed: "This looks like a photo or a screen, not a live person.",
  duplicate_face: "This person is already enrolled.",
  photos_disagree: "The photos are not of one person.",
  not_found: "No such person.",
  verification_delayed: "Too many failed attempts: wait a moment and try again.",
  disabled: "Verification is disabled for this person; an administrator can reset it.",
  liveness_token_refused: "The check expired or was already used. Start again.",
  liveness_token_required: "This server requires the head-turn check.",
  token_face_mismatch: "The photo is not of the person who did the head-turn check.",
  liveness_unavailable: "The liveness check is not installed on this server.",
  forbidden: "This key may not do that.",
  unauthorized: "The key is not valid (revoked or mistyped).",
  busy: "The server is busy. Try again in a moment.",
  rate_limits_unavailable: "The server cannot check its request limits just now. Try again in a moment.",
  rate_limited: "Too many requests. Try again in a moment.",
  bad_image: "That file is not a photo the server can read.",
};

const REASONS = {
  no_face: "your face left the picture",
  multiple_faces: "someone else came into view",
  track_lost: "the face jumped or changed",
  repeated_frame: "the camera sent the same picture twice",
  wrong_direction: "the head turned the wrong way",
  step_timeout: "a turn took too long (or did not happen)",
  pad: "it looked like a photo or a screen, not a live person",
  identity: "it did not look like one person throughout",
  not_claimed_user: "the person is not the one named",
  expired: "the check took too long",
  frame_limit: "the check took too long",
  abandoned: "the check was interrupted",
};

function words(e) {
  if (e instanceof ApiError) return WORDS[e.code] || e.message;
  return String(e.message || e);
}

function say(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  if (kind) el.dataset.kind = kind;
  else delete el.dataset.kind;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function button(label, onClick, name) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "secondary";
  b.textContent = label;
  if (name) b.setAttribute("aria-label", name);
  b.addEventListener("click", onClick);
  return b;
}

// ---- sign-in and pages ------------------------------------------------------

let me = null;

function allows(scope) {
  return !!me && (me.scopes.includes("admin") || me.scopes.includes(scope));
}

async function signIn(token) {
  sessionStorage.setItem(KEY, token);
  try {
    me = await api("GET", "/auth/whoami");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    me = null;
    throw e;
  }
}

function signOut() {
  stopAll();
  sessionStorage.removeItem(KEY);
  me = null;
  location.hash = "#/";
  route();
}

const PAGES = ["signin", "enrol", "verify", "identify", "admin"];
const NEEDS = { enrol: "enrol", verify: "recognize", identify: "recognize", admin: "admin" };

function firstPage() {
  return ["enrol", "verify", "identify", "admin"].find((p) => allows(NEEDS[p])) || "signin";
}

function route() {
  const [, page = "", sub = ""] = location.hash.split("/");
  let name = me ? page || firstPage() : "signin";
  if (name !== "signin" && !allows(NEEDS[name] || "admin")) name = me ? firstPage() : "signin";
  stopAll();
  for (const p of PAGES) $(`page-${p}`).hidden = p !== name;
  $("nav").hidden = !me;
  $("who").hidden = !me;
  if (me) {
    $("who-name").textContent = `Signed in as ${me.name || "(no authentication)"}`;
    for (const li of $("nav").querySelectorAll("li[data-scope]")) li.hidden = !allows(li.dataset.scope);
    for (const a of $("nav").querySelectorAll("a")) {
      if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }
  document.title = `FaceGate — ${$(`page-${name}`).querySelector("h2").textContent}`;
  if (name === "admin") showAdmin(sub || "users");
}

// ---- the camera and the stream ---------------------------------------------

let camera = null; // { stream, video, ws, timer, answered }

async function startCamera(videoId) {
  const video = $(videoId);
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  video.srcObject = stream;
  video.dataset.live = "";
  await video.play();
  return { stream, video };
}

function stopAll() {
  if (!camera) return;
  clearInterval(camera.timer);
  if (camera.ws) camera.ws.close(1000);
  for (const t of camera.stream.getTracks()) t.stop();
  camera.video.srcObject = null;
  delete camera.video.dataset.live;
  camera.video.parentElement.querySelector(".overlay").replaceChildren();
  camera = null;
}

function snapshot(video) {
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.9));
}

async function openStream(onEvent) {
  const { ticket } = await api("POST", "/stream/tickets");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/stream`, ["facegate", `facegate.ticket.${ticket}`]);
  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (m) => {
    const event = JSON.parse(m.data);
    // Every frame is answered (a result, `dropped` or an error, with its
    // sequence number): the pump sends the next one then.
    if (camera && camera.answered && event.seq != null) camera.answered(event.seq);
    onEvent(event);
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error("the stream could not be opened")), { once: true });
  });
  return ws;
}

// Sends the camera's frames on the stream: only a frame the camera has not
// sent before (a slow or stalled camera would otherwise repeat a picture,
// which the challenge refuses as a replay), at most `fps` a second, and the
// next only once the server has answered the last (or after two seconds),
// so a busy server never has to drop one.
const ANSWER_WAIT_MS = 2000;

function pump(cam, fps) {
  let seq = 0;
  let busy = false;
  let fresh = true; // the picture on screen now, sent once
  let waiting = null; // { seq, at }
  let last = 0;
  const started = performance.now();
  const onVideoFrame = () => {
    fresh = true;
    if (camera === cam) cam.video.requestVideoFrameCallback(onVideoFrame);
  };
  if (cam.video.requestVideoFrameCallback) cam.video.requestVideoFrameCallback(onVideoFrame);
  cam.answered = (s) => {
    if (waiting && s >= waiting.seq) waiting = null;
  };
  cam.timer = setInterval(async () => {
    const now = performance.now();
    if (busy || !cam.ws || cam.ws.readyState !== WebSocket.OPEN) return;
    if (waiting && now - waiting.at < ANSWER_WAIT_MS) return;
    if (!fresh || now - last < 1000 / fps) return;
    busy = true;
    fresh = !cam.video.requestVideoFrameCallback;
    last = now;
    try {
      const blob = await snapshot(cam.video);
      const jpeg = new Uint8Array(await blob.arrayBuffer());
      const frame = new Uint8Array(12 + jpeg.length);
      const view = new DataView(frame.buffer);
      seq += 1;
      view.setUint32(0, seq);
      view.setBigUint64(4, BigInt(Math.round(performance.now() - started)));
      frame.set(jpeg, 12);
      cam.ws.send(frame);
      waiting = { seq, at: performance.now() };
    } finally {
      busy = false;
    }
  }, 10);
}

// Draws each face's box over the video, with its label (a name, "unknown")
// on the box's top edge. Boxes are elements placed in percent of the frame,
// so they follow the video's size on any screen.
function drawBoxes(video, faces) {
  const overlay = video.parentElement.querySelector(".overlay");
  const w = video.videoWidth || 1;
  const h = video.videoHeight || 1;
  overlay.replaceChildren(
    ...faces.map((f) => {
      const b = f.bbox;
      const box = document.createElement("div");
      box.className = "box";
      if (b.top < 0.08 * h) box.classList.add("top");
      if (f.state) box.dataset.state = f.state;
      box.style.left = `${(100 * b.left) / w}%`;
      box.style.top = `${(100 * b.top) / h}%`;
      box.style.width = `${(100 * b.width) / w}%`;
      box.style.height = `${(100 * b.height) / h}%`;
      if (f.label) {
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = f.label;
        box.append(label);
      }
      return box;
    }),
  );
}

// ---- enrol -------------------------------------------------------------------

let enrolPhoto = null; // a Blob

async function enrolCamera() {
  stopAll();
  try {
    camera = await startCamera("enrol-video");
    camera.ws = await openStream((e) => {
      if (!camera) return;
      if (e.type === "frame") {
        drawBoxes(camera.video, e.faces);
        const n = e.faces.length;
        say("enrol-hint", n === 1 ? "One face in view: press Enrol to take the photo." : n === 0 ? "No face in view." : "More than one face in view.");
      } else if (e.type === "error" && e.seq == null) {
        // The mode was refused (a rate limit): the preview cannot be trusted.
        say("enrol-hint", WORDS[e.error] || e.message, "bad");
      }
    });
    camera.ws.send(JSON.stringify({ mode: "detect" }));
    pump(camera, 5);
  } catch (e) {
    stopAll();
    say("enrol-hint", `The camera could not be started: ${words(e)}`, "bad");
  }
}

function base64(blob) {
  return new Promise((resolve) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",")[1]);
    r.readAsDataURL(blob);
  });
}

async function enrol(event) {
  event.preventDefault();
  const form = event.target;
  let photo = enrolPhoto;
  if (camera) photo = await snapshot(camera.video);
  if (!photo) {
    say("enrol-status", "Take a photo with the camera or choose one first.", "bad");
    return;
  }
  say("enrol-status", "Enrolling…");
  const body = { name: form.name.value.trim(), image: await base64(photo) };
  if (form.external_ref.value.trim()) body.external_ref = form.external_ref.value.trim();
  try {
    const r = await api("POST", "/register/", body);
    stopAll();
    say("enrol-status", `Enrolled ${r.name} (user ${r.user_id}).`, "ok");
    form.reset();
    enrolPhoto = null;
  } catch (e) {
    say("enrol-status", `Not enrolled: ${words(e)}`, "bad");
  }
}

// ---- verify with the challenge ---------------------------------------------

const PROMPTS = {
  turn_left: "Turn your head to your left",
  turn_right: "Turn your head to your right",
};

function showSteps(steps, phase) {
  const list = $("verify-steps");
  list.replaceChildren();
  steps.forEach((s, i) => {
    const li = document.createElement("li");
    li.textContent = PROMPTS[s];
    const done = phase.phase === "done" || (phase.step !== undefined && (i < phase.step || (i === phase.step && phase.phase === "returning")));
    li.dataset.state = done ? "done" : phase.step === i ? "now" : "";
    list.append(li);
  });
}

function promptFor(steps, p) {
  switch (p.phase) {
    case "start":
      return "Look straight at the camera";
    case "turning":
      return PROMPTS[steps[p.step]];
    case "returning":
      return "Now look straight ahead again";
    default:
      return "Hold still…";
  }
}

async function verify(event) {
  event.preventDefault();
  stopAll();
  const who = $("verify-who").value.trim();
  const body = /^\d+$/.test(who) ? { purpose: "verify", user_id: Number(who) } : { purpose: "verify", external_ref: who };
  say("verify-status", "");
  $("verify-steps").replaceChildren();
  try {
    const session = await api("POST", "/liveness/sessions", body);
    const steps = session.challenge.steps;
    camera = await startCamera("verify-video");
    const cam = camera;
    const result = new Promise((resolve, reject) => {
      openStream((e) => {
        if (e.type === "challenge") {
          drawBoxes(cam.video, e.bbox ? [{ bbox: e.bbox }] : []);
          $("verify-prompt").textContent = promptFor(steps, e);
          showSteps(steps, e);
        } else if (e.type === "challenge_result") {
          resolve(e);
        } else if (e.type === "error" && e.seq == null) {
          reject(new ApiError(400, e));
        }
      })
        .then((ws) => {
          cam.ws = ws;
          ws.send(JSON.stringify({ mode: "challenge", session_id: session.id }));
          ws.addEventListener("close", () => reject(new Error("the stream closed")), { once: true });
          $("verify-prompt").textContent = "Look straight at the camera";
          showSteps(steps, { phase: "start" });
          pump(cam, 12);
        })
        .catch(reject);
    });
    const r = await result;
    clearInterval(cam.timer);
    if (!r.passed) {
      stopAll();
      $("verify-prompt").textContent = "";
      say("verify-status", `Not verified: ${REASONS[r.reason] || r.reason}. Try again.`, "bad");
      return;
    }
    $("verify-prompt").textContent = "Hold still…";
    const photo = await snapshot(cam.video);
    stopAll();
    const v = await api("POST", `/users/${session.user_id}/verify`, { image: await base64(photo), liveness_token: r.token });
    $("verify-prompt").textContent = "";
    if (v.match) say("verify-status", "Verified.", "ok");
    else say("verify-status", "Not verified: the face does not match. Try again.", "bad");
  } catch (e) {
    stopAll();
    $("verify-prompt").textContent = "";
    say("verify-status", `Not verified: ${words(e)}`, "bad");
  }
}

// ---- live identify -----------------------------------------------------------

async function identify() {
  stopAll();
  say("identify-status", "Starting…");
  try {
    camera = await startCamera("identify-video");
    const cam = camera;
    cam.ws = await openStream((e) => {
      if (e.type === "error" && e.seq == null) {
        say("identify-status", WORDS[e.error] || e.message, "bad");
        return;
      }
      if (e.type !== "frame") return;
      const faces = e.faces.map((f) => {
        const known = f.state === "identified";
        const label = known ? f.name : f.state === "unknown" ? "unknown" : "…";
        return { bbox: f.bbox, label, state: known ? "identified" : f.state === "unknown" ? "unknown" : "pending" };
      });
      drawBoxes(cam.video, faces);
      const list = $("identify-list");
      list.replaceChildren(
        ...faces.map((f) => {
          const li = document.createElement("li");
          li.textContent = f.label === "…" ? "Recognising…" : f.label;
          return li;
        }),
      );
    });
    cam.ws.send(JSON.stringify({ mode: "identify" }));
    pump(cam, 8);
    say("identify-status", "Camera on.");
  } catch (e) {
    stopAll();
    say("identify-status", `The camera could not be started: ${words(e)}`, "bad");
  }
}

// ---- administer --------------------------------------------------------------

const PANELS = ["users", "keys", "lockouts", "audit", "stats"];

function showAdmin(panel) {
  if (!PANELS.includes(panel)) panel = "users";
  for (const p of PANELS) $(`admin-${p}`).hidden = p !== panel;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.getAttribute("href") === `#/admin/${panel}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  say("admin-status", "");
  const load = { users: () => loadUsers(false), keys: loadKeys, lockouts: loadLockouts, audit: loadAudit, stats: loadStats }[panel];
  load().catch((e) => say("admin-status", words(e), "bad"));
}

let usersAfter = null;

async function loadUsers(more) {
  if (!more) usersAfter = null;
  const name = $("users-name").value.trim();
  const q = new URLSearchParams({ limit: "20" });
  if (name) q.set("name", name);
  if (usersAfter) q.set("after", String(usersAfter));
  const users = await api("GET", `/users/?${q}`);
  const rows = $("users-rows");
  if (!more) rows.replaceChildren();
  for (const u of users) {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    actions.append(
      button("Templates", () => loadTemplates(u), `Templates of ${u.name}`),
      " ",
      button("Delete", () => deleteUser(u), `Delete ${u.name}`),
    );
    tr.append(cell(u.id), cell(u.name), cell(u.external_ref), cell(u.template_count), actions);
    rows.append(tr);
  }
  usersAfter = users.length ? users[users.length - 1].id : usersAfter;
  $("users-more").hidden = users.length < 20;
  if (!rows.children.length) say("admin-status", "No users.");
}

async function loadTemplates(u) {
  const id = u.id;
  const r = await api("GET", `/users/${id}/faces`);
  $("user-detail").hidden = false;
  $("user-detail-title").textContent = `Templates of ${u.name}`;
  const rows = $("templates-rows");
  rows.replaceChildren();
  for (const t of r.faces || []) {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    actions.append(
      button("Delete", async () => {
        if (!confirm(`Delete template ${t.id} of ${u.name}?`)) return;
        try {
          await api("DELETE", `/users/${id}/faces/${t.id}`);
          await loadTemplates(u);
          say("admin-status", `Template ${t.id} deleted.`, "ok");
        } catch (e) {
          say("admin-status", words(e), "bad");
        }
      }, `Delete template ${t.id}`),
    );
    tr.append(cell(t.id), cell(t.model + (t.active_model ? "" : " (inactive)")), cell(t.quality.toFixed(2)), cell(t.created_at), actions);
    rows.append(tr);
  }
}

async function deleteUser(u) {
  if (!confirm(`Delete ${u.name} and all their templates?`)) return;
  try {
    await api("DELETE", `/users/${u.id}`);
    $("user-detail").hidden = true;
    await loadUsers(false);
    say("admin-status", `${u.name} deleted.`, "ok");
  } catch (e) {
    say("admin-status", words(e), "bad");
  }
}

async function loadKeys() {
  const { keys } = await api("GET", "/admin/keys");
  const rows = $("keys-rows");
  rows.replaceChildren();
  for (const k of keys) {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    if (!k.revoked_at) {
      actions.append(
        button("Revoke", async () => {
          if (!confirm(`Revoke the key "${k.name}"? Clients using it stop working at once.`)) return;
          try {
            await api("DELETE", `/admin/keys/${k.id}`);
            await loadKeys();
            say("admin-status", `Key "${k.name}" revoked.`, "ok");
          } catch (e) {
            say("admin-status", words(e), "bad");
          }
        }, `Revoke ${k.name}`),
      );
    }
    tr.append(cell(k.id), cell(k.name), cell(k.scopes.join(", ")), cell(k.revoked_at ? "revoked" : "active"), actions);
    rows.append(tr);
  }
}

async function createKey(event) {
  event.preventDefault();
  const form = event.target;
  const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((c) => c.value);
  if (!scopes.length) {
    say("admin-status", "Choose at least one scope.", "bad");
    return;
  }
  try {
    const k = await api("POST", "/admin/keys", { name: form.name.value.trim(), scopes });
    $("key-token").textContent = k.token;
    $("key-created").hidden = false;
    form.reset();
    await loadKeys();
    say("admin-status", `Key "${k.name}" created.`, "ok");
  } catch (e) {
    say("admin-status", words(e), "bad");
  }
}

async function loadLockouts() {
  const list = await api("GET", "/admin/lockouts");
  const rows = $("lockouts-rows");
  rows.replaceChildren();
  for (const l of list) {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    actions.append(
      button("Reset", async () => {
        try {
          await api("POST", `/admin/users/${l.user_id}/lockout/reset`);
          await loadLockouts();
          say("admin-status", `${l.name}'s lockout reset.`, "ok");
        } catch (e) {
          say("admin-status", words(e), "bad");
        }
      }, `Reset ${l.name}`),
    );
    const state = l.disabled ? "disabled" : l.locked_until ? `delayed until ${l.locked_until}` : "counting";
    tr.append(cell(`${l.name} (${l.user_id})`), cell(l.failures), cell(state), actions);
    rows.append(tr);
  }
  if (!list.length) say("admin-status", "Nobody is locked out.");
}

function isoOf(local) {
  return local ? new Date(local).toISOString() : null;
}

async function loadAudit(event) {
  if (event) event.preventDefault();
  const q = new URLSearchParams({ limit: "50" });
  const user = $("audit-user").value.trim();
  if (user) q.set("user_id", user);
  const since = isoOf($("audit-since").value);
  const until = isoOf($("audit-until").value);
  if (since) q.set("since", since);
  if (until) q.set("until", until);
  const page = await api("GET", `/admin/audit?${q}`);
  const rows = $("audit-rows");
  rows.replaceChildren();
  for (const e of page.events) {
    const tr = document.createElement("tr");
    tr.append(cell(e.at), cell(e.action), cell(e.outcome), cell(e.user_id), cell(e.key_id), cell(e.detail));
    rows.append(tr);
  }
  if (!page.events.length) say("admin-status", "No events.");
}

async function loadStats() {
  const s = await api("GET", "/stats/");
  const list = $("stats-list");
  list.replaceChildren();
  const add = (k, v) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    list.append(dt, dd);
  };
  for (const [k, v] of Object.entries(s)) add(k, v);
}

// ---- wiring ------------------------------------------------------------------

function wire() {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    say("signin-status", "Signing in…");
    try {
      await signIn($("signin-key").value.trim());
      $("signin-key").value = "";
      say("signin-status", "");
      location.hash = `#/${firstPage()}`;
      route();
      $("main").focus();
    } catch (err) {
      say("signin-status", `Not signed in: ${words(err)}`, "bad");
    }
  });
  $("sign-out").addEventListener("click", signOut);
  $("enrol-camera").addEventListener("click", enrolCamera);
  $("enrol-file").addEventListener("change", (e) => {
    stopAll();
    enrolPhoto = e.target.files[0] || null;
    say("enrol-hint", enrolPhoto ? `Photo chosen: ${enrolPhoto.name}` : "");
  });
  $("enrol-form").addEventListener("submit", enrol);
  $("verify-form").addEventListener("submit", verify);
  $("identify-start").addEventListener("click", identify);
  $("identify-stop").addEventListener("click", () => {
    stopAll();
    say("identify-status", "Camera off.");
  });
  $("users-search").addEventListener("submit", (e) => {
    e.preventDefault();
    loadUsers(false).catch((err) => say("admin-status", words(err), "bad"));
  });
  $("users-more").addEventListener("click", () => loadUsers(true).catch((err) => say("admin-status", words(err), "bad")));
  $("key-form").addEventListener("submit", createKey);
  $("audit-form").addEventListener("submit", (e) => loadAudit(e).catch((err) => say("admin-status", words(err), "bad")));
  window.addEventListener("hashchange", route);
}

async function start() {
  wire();
  if (key()) {
    try {
      me = await api("GET", "/auth/whoami");
    } catch {
      sessionStorage.removeItem(KEY);
    }
  }
  route();
}

start();
