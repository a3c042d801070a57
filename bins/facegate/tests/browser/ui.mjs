// Browser checks of FaceGate's page, driven by bins/facegate/tests/ui.rs:
// Debian's Chromium through playwright-core (which never downloads a
// browser), against a server the Rust test started and seeded.
//
//   node ui.mjs <scenario> <base url> <out dir> [JSON arguments]
//
// Prints one JSON line of findings; exits non-zero on a failed check.
// Every request the page makes is recorded, and any that leaves loopback
// fails the run.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [scenario, base, out, rawArgs] = process.argv.slice(2);
const args = rawArgs ? JSON.parse(rawArgs) : {};
mkdirSync(out, { recursive: true });

const failures = [];
const findings = { scenario, requests: [], axe: {} };
function check(ok, what) {
  if (!ok) failures.push(what);
}

async function browser(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extra,
    ],
  });
}

async function page(b) {
  const context = await b.newContext({ viewport: { width: 390, height: 844 } });
  const p = await context.newPage();
  p.on("request", (r) => {
    const url = new URL(r.url());
    findings.requests.push(url.host);
    const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
    if (!loopback && url.protocol !== "data:" && url.protocol !== "blob:") failures.push(`a request left loopback: ${url.origin}`);
  });
  // WebSockets are not requests to Playwright: checked apart.
  p.on("websocket", (ws) => {
    const url = new URL(ws.url());
    findings.requests.push(`${url.protocol}//${url.host}`);
    if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) failures.push(`a WebSocket left loopback: ${url.origin}`);
  });
  p.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  return p;
}

async function axe(p, name) {
  // Evaluated through the DevTools protocol: the page's CSP (no inline
  // script) stays as it is.
  await p.evaluate(AXE);
  const result = await p.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  });
  findings.axe[name] = result;
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `${name}: axe found ${JSON.stringify(bad)}`);
}

async function shot(p, name) {
  await p.screenshot({ path: `${out}/${name}.png`, fullPage: true });
}

// Signs in with the keyboard alone: Tab to the key field, type, Enter.
async function signInByKeyboard(p, token) {
  await p.goto(`${base}/ui/`);
  await p.waitForSelector("#signin-form");
  for (let i = 0; i < 6; i++) {
    await p.keyboard.press("Tab");
    if (await p.evaluate(() => document.activeElement && document.activeElement.id === "signin-key")) break;
  }
  check(await p.evaluate(() => document.activeElement.id === "signin-key"), "Tab reaches the key field");
  await p.keyboard.type(token);
  await p.keyboard.press("Enter");
  await p.waitForSelector("#nav:not([hidden])");
}

const visible = (p, sel) => p.locator(sel).isVisible();

// Presses Tab until the element with `id` has the focus (at most 30 times).
async function tabTo(p, id) {
  for (let i = 0; i < 30; i++) {
    if (await p.evaluate((want) => document.activeElement && document.activeElement.id === want, id)) return;
    await p.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached #${id}`);
}

// The browser's fake camera, playing a clip of ../shared/video in a loop
// (fixed when the browser starts).
const fakeCamera = (clip) => [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  `--use-file-for-fake-video-capture=${clip}`,
];

// The JPEG frames of an MJPEG clip (each starts with FF D8 FF).
function clipFrames(path) {
  const bytes = readFileSync(path);
  const starts = [];
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd8 && bytes[i + 2] === 0xff) starts.push(i);
  }
  return starts.map((s, k) => bytes.subarray(s, k + 1 < starts.length ? starts[k + 1] : bytes.length));
}

// Replaces getUserMedia with a canvas stream: it shows the first of the
// frames the test hands over (`__facegateFrames`, data URLs) and, once
// `__facegatePlay()` is called, the rest in order at `fps`, each drawn once
// (a canvas stream makes a new video frame only when drawn), then holds the
// last. Runs before the page's own script.
function canvasCamera(fps) {
  /* global window, navigator, document, Image */
  const load = (url) =>
    new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("a frame did not load"));
      img.src = url;
    });
  navigator.mediaDevices.getUserMedia = async () => {
    while (!window.__facegateFrames) await new Promise((r) => setTimeout(r, 20));
    const frames = await Promise.all(window.__facegateFrames.map(load));
    const canvas = document.createElement("canvas");
    canvas.width = frames[0].naturalWidth;
    canvas.height = frames[0].naturalHeight;
    const g = canvas.getContext("2d");
    const stream = canvas.captureStream();
    setTimeout(() => g.drawImage(frames[0], 0, 0), 0);
    window.__facegatePlayed = 1;
    window.__facegatePlay = () => {
      const timer = setInterval(() => {
        if (window.__facegatePlayed >= frames.length) {
          clearInterval(timer);
          return;
        }
        g.drawImage(frames[window.__facegatePlayed], 0, 0);
        window.__facegatePlayed += 1;
      }, 1000 / fps);
    };
    return stream;
  };
}

// Where the face box and its label are on the screen, for each face drawn
// over the video.
async function overlayBoxes(p, videoId) {
  return p.evaluate((id) => {
    const video = document.getElementById(id);
    const rect = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    };
    return [...video.parentElement.querySelectorAll(".overlay .box")].map((box) => {
      const label = box.querySelector(".label");
      return { video: rect(video), box: rect(box), label: label && rect(label), text: label && label.textContent };
    });
  }, videoId);
}

// A label is on its box when it touches the box's top edge (just above or
// just inside) and starts within the box's width.
function labelOnBox({ box, label }) {
  if (!label) return false;
  const touchesTop = label.bottom >= box.top - 4 && label.top <= box.top + 40;
  const inWidth = label.left >= box.left - 6 && label.left <= box.right;
  return touchesTop && inWidth;
}

function inside({ video, box }) {
  return box.left >= video.left - 1 && box.right <= video.right + 1 && box.top >= video.top - 1 && box.bottom <= video.bottom + 1;
}

const scenarios = {
  // An administrator: every page's screenshot and accessibility, keys
  // created and revoked, a lockout reset, a template and a user deleted.
  async admin() {
    const b = await browser();
    const p = await page(b);
    await p.goto(`${base}/ui/`);
    await p.waitForSelector("#signin-form");
    await axe(p, "signin");
    await shot(p, "signin");
    await signInByKeyboard(p, args.admin);
    for (const name of ["enrol", "verify", "identify"]) {
      await p.goto(`${base}/ui/#/${name}`);
      await p.waitForSelector(`#page-${name}:not([hidden])`);
      await axe(p, name);
      await shot(p, name);
    }
    // Users: search, templates, delete one template, then the user.
    await p.goto(`${base}/ui/#/admin/users`);
    await p.waitForSelector("#users-rows tr");
    await axe(p, "admin-users");
    await shot(p, "admin-users");
    await p.fill("#users-name", args.user_name.slice(0, 4).toLowerCase());
    await p.click("#users-search button[type=submit]");
    await p.locator("#users-rows tr", { hasText: args.user_name }).first().waitFor();
    p.on("dialog", (d) => d.accept());
    await p.click(`button[aria-label="Templates of ${args.user_name}"]`);
    await p.waitForSelector("#templates-rows tr");
    const before = await p.locator("#templates-rows tr").count();
    await p.locator("#templates-rows tr button").first().click();
    await p.locator("#admin-status", { hasText: "deleted" }).waitFor();
    const after = await p.locator("#templates-rows tr").count();
    check(after === before - 1, `templates ${before} -> ${after}`);
    findings.templates = { before, after };
    await p.click(`button[aria-label="Delete ${args.user_name}"]`);
    await p.locator("#admin-status", { hasText: `${args.user_name} deleted` }).waitFor();
    // Keys: create one (the token shown once), then revoke it.
    await p.goto(`${base}/ui/#/admin/keys`);
    await p.waitForSelector("#keys-rows tr");
    await p.fill("#key-name", "ui test kiosk");
    await p.check('input[name=scope][value=recognize]');
    await p.click("#key-form button[type=submit]");
    await p.waitForSelector("#key-created:not([hidden])");
    await p.locator("#admin-status", { hasText: "ui test kiosk\" created" }).waitFor();
    findings.created_token_prefix = (await p.textContent("#key-token")).slice(0, 3);
    await axe(p, "admin-keys");
    await shot(p, "admin-keys");
    await p.click('button[aria-label="Revoke ui test kiosk"]');
    await p.locator("#admin-status", { hasText: "revoked" }).waitFor();
    // Lockouts: the seeded user is listed; reset.
    await p.goto(`${base}/ui/#/admin/lockouts`);
    await p.waitForSelector("#lockouts-rows tr");
    await axe(p, "admin-lockouts");
    await shot(p, "admin-lockouts");
    await p.click(`button[aria-label="Reset ${args.locked_name}"]`);
    await p.locator("#admin-status", { hasText: "reset" }).waitFor();
    // The audit log, filtered by the locked user; stats.
    await p.goto(`${base}/ui/#/admin/audit`);
    await p.fill("#audit-user", String(args.locked_id));
    await p.click("#audit-form button[type=submit]");
    await p.waitForSelector("#audit-rows tr");
    findings.audit_rows = await p.locator("#audit-rows tr").count();
    await axe(p, "admin-audit");
    await shot(p, "admin-audit");
    await p.goto(`${base}/ui/#/admin/stats`);
    await p.waitForSelector("#stats-list dt");
    await axe(p, "admin-stats");
    await shot(p, "admin-stats");
    await b.close();
  },

  // The fake camera plays d12: a person enrolled from the camera with the
  // keyboard alone, then identified live with their name on their box.
  async enrolAndIdentify() {
    const b = await browser(fakeCamera(args.clip));
    const p = await page(b);
    await signInByKeyboard(p, args.key);
    await p.waitForSelector("#page-enrol:not([hidden])");
    await tabTo(p, "enrol-name");
    await p.keyboard.type(args.name);
    await tabTo(p, "enrol-ref");
    await p.keyboard.type(args.reference);
    await tabTo(p, "enrol-camera");
    await p.keyboard.press("Enter");
    await p.locator("#enrol-hint", { hasText: "One face in view" }).waitFor({ timeout: 30000 });
    findings.enrol_preview = await overlayBoxes(p, "enrol-video");
    check(findings.enrol_preview.length === 1 && inside(findings.enrol_preview[0]), `enrol preview boxes ${JSON.stringify(findings.enrol_preview)}`);
    await shot(p, "enrol-camera");
    await axe(p, "enrol-camera");
    await tabTo(p, "enrol-submit");
    await p.keyboard.press("Enter");
    await p.locator("#enrol-status", { hasText: "Enrolled" }).waitFor({ timeout: 30000 });
    findings.enrolled = await p.textContent("#enrol-status");
    await axe(p, "enrol-done");
    await shot(p, "enrol-done");

    await p.goto(`${base}/ui/#/identify`);
    await p.waitForSelector("#page-identify:not([hidden])");
    await p.click("#identify-start");
    await p.locator("#identify-list li", { hasText: args.name }).waitFor({ timeout: 60000 });
    await p.locator("#identify-overlay .label", { hasText: args.name }).first().waitFor();
    findings.identify_boxes = await overlayBoxes(p, "identify-video");
    const named = findings.identify_boxes.filter((f) => f.text === args.name);
    check(named.length === 1, `one box named ${args.name}: ${JSON.stringify(findings.identify_boxes)}`);
    check(named.every((f) => inside(f) && labelOnBox(f)), `the name sits on its box: ${JSON.stringify(named)}`);
    await shot(p, "identify-live");
    await axe(p, "identify-live");
    await p.click("#identify-stop");
    await b.close();
  },

  // The verify page's challenge answered by d12's frames that turn as the
  // drawn steps ask (sessions are drawn again, by the test, until d12
  // covers the steps): verified with the token.
  async challengePass() {
    const b = await browser();
    const p = await page(b);
    await p.addInitScript(canvasCamera, 12);
    const frames = clipFrames(args.clip);
    findings.drawn = [];
    await p.route("**/liveness/sessions", async (route) => {
      for (let i = 0; i < 40; i++) {
        const res = await route.fetch();
        const body = await res.json();
        const steps = body.challenge ? body.challenge.steps.join(",") : null;
        findings.drawn.push(steps);
        const run = steps && args.runs[steps];
        if (res.status() !== 201 || run) {
          if (run) {
            const urls = frames.slice(run[0], run[1]).map((f) => `data:image/jpeg;base64,${f.toString("base64")}`);
            await p.evaluate((u) => {
              window.__facegateFrames = u;
            }, urls);
          }
          await route.fulfill({ response: res, json: body });
          return;
        }
      }
      await route.abort();
    });
    await signInByKeyboard(p, args.key);
    await p.goto(`${base}/ui/#/verify`);
    await p.fill("#verify-who", args.reference);
    await p.click("#verify-start");
    // The person looks at the camera until the first prompt to turn, then
    // the clip plays its turns.
    await p.locator("#verify-prompt", { hasText: "Turn your head" }).waitFor({ timeout: 30000 });
    findings.first_prompt = await p.textContent("#verify-prompt");
    await shot(p, "verify-challenge");
    await p.evaluate(() => window.__facegatePlay());
    const prompts = new Set();
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      const now = (await p.textContent("#verify-prompt")).trim();
      if (now) prompts.add(now);
      if ((await p.textContent("#verify-status")).trim()) break;
      await p.waitForTimeout(100);
    }
    findings.prompts = [...prompts];
    findings.status = (await p.textContent("#verify-status")).trim();
    findings.played = await p.evaluate(() => window.__facegatePlayed);
    check(findings.status === "Verified.", `the page says ${JSON.stringify(findings.status)}`);
    findings.steps_shown = await p.evaluate(() => [...document.querySelectorAll("#verify-steps li")].map((li) => [li.textContent, li.dataset.state]));
    await shot(p, "verify-passed");
    await axe(p, "verify-passed");
    await b.close();
  },

  // The fake camera plays a frontal-only clip: the challenge fails on the
  // first turn, and the page says why.
  async challengeFrontal() {
    const b = await browser(fakeCamera(args.clip));
    const p = await page(b);
    await signInByKeyboard(p, args.key);
    await p.goto(`${base}/ui/#/verify`);
    await p.fill("#verify-who", args.reference);
    await p.click("#verify-start");
    await p.locator("#verify-prompt", { hasText: "Turn your head" }).waitFor({ timeout: 30000 });
    await p.locator("#verify-status", { hasText: "Not verified" }).waitFor({ timeout: 45000 });
    findings.status = (await p.textContent("#verify-status")).trim();
    check(findings.status.includes(args.expect), `the page says ${JSON.stringify(findings.status)}`);
    await shot(p, "verify-failed");
    await axe(p, "verify-failed");
    await b.close();
  },

  // A recognize-only key sees no admin page, and the API refuses it anyway.
  async recognize() {
    const b = await browser();
    const p = await page(b);
    await signInByKeyboard(p, args.recognize);
    findings.nav = await p.evaluate(() =>
      [...document.querySelectorAll("#nav li")].filter((li) => !li.hidden).map((li) => li.textContent.trim()),
    );
    check(!findings.nav.includes("Administer") && !findings.nav.includes("Enrol"), `nav shows ${findings.nav}`);
    await p.goto(`${base}/ui/#/admin/users`);
    await p.waitForTimeout(300);
    check(!(await visible(p, "#page-admin")), "the admin page stays hidden");
    findings.admin_status = await p.evaluate(
      async (t) => (await fetch("/users/", { headers: { Authorization: `Bearer ${t}` } })).status,
      args.recognize,
    );
    check(findings.admin_status === 403, `GET /users/ answered ${findings.admin_status}`);
    await b.close();
  },
};

try {
  await scenarios[scenario]();
} catch (e) {
  failures.push(`${scenario}: ${e.stack || e}`);
}
findings.failures = failures;
console.log(JSON.stringify(findings));
process.exit(failures.length ? 1 : 0);
