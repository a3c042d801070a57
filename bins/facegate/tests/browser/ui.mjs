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
