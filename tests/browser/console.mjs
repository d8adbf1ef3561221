// Browser test of the operator console: Debian's Chromium, headless, driven by
// npm playwright-core (tools/node_modules). Started by tests/console_browser.rs,
// which brings up a fresh stack (Postgres, PostgREST, Deno functions, worker,
// simulator with its local sign-in) and passes what to expect in EXPECT (JSON).
// Every role signs in through the console's form. Also runs against
// `scripts/dev.sh` by hand: CONSOLE_URL=http://127.0.0.1:54323/ node tests/browser/console.mjs
// (without EXPECT only the role screens are visited and screenshotted).
// Screenshots of every screen go to ARTIFACTS_DIR (default tests/artifacts/console).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { launch, signIn, submitSignIn, session as storedSession } from "./signin.mjs";

const CONSOLE_URL = process.env.CONSOLE_URL || "http://127.0.0.1:54323/";
const OUT = process.env.ARTIFACTS_DIR || path.resolve(path.dirname(new URL(import.meta.url).pathname), "../artifacts/console");
const EXPECT = JSON.parse(process.env.EXPECT || "{}");
fs.mkdirSync(OUT, { recursive: true });

const browser = await launch();
const timings = {};
let failures = 0;

async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

async function open() {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: "pl-PL", timezoneId: "Europe/Warsaw" });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(CONSOLE_URL);
  return { page, context, errors };
}

async function session(role) {
  const opened = await open();
  await signIn(opened.page, role);
  return opened;
}

const accessToken = async (page) => (await storedSession(page))?.access_token;

async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

async function go(page, hash, selector) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(selector, { timeout: 15_000 });
}

async function rendered(page, key) {
  const ms = await page.evaluate(() => window.__lastRenderMs);
  if (ms != null) (timings[key] ||= []).push(Math.round(ms));
}

const ADMIN_SCREENS = ["kolejka", "uzgodnienia", "alerty", "crm"];

// Sign-in refusals first: a wrong password (and an unknown e-mail) get a Polish
// message and no session. The browser logs the 400 answers as console errors,
// so this context's errors are not asserted.
{
  const { page, context } = await open();
  await step("sign-in: a wrong password is refused in Polish and signs nobody in", async () => {
    await shot(page, "login-01-formularz");
    await submitSignIn(page, "admin", "not-the-password");
    await page.waitForSelector("[data-testid=login-error]:not([hidden])");
    assert.match(await page.textContent("[data-testid=login-error]"), /Nieprawidłowy adres e-mail lub hasło/);
    assert.equal(await page.$("[data-testid=who]"), null);
    assert.equal(await storedSession(page), null);
    assert.equal(await page.inputValue("[data-testid=login-password]"), "", "the wrong password is cleared");
    await shot(page, "login-02-zle-haslo");
  });
  await step("sign-in: an unknown e-mail gets the same answer", async () => {
    await page.evaluate(() => { document.querySelector("[data-testid=login-error]").hidden = true; });
    await submitSignIn(page, "nikt@callsync.test");
    await page.waitForSelector("[data-testid=login-error]:not([hidden])");
    assert.match(await page.textContent("[data-testid=login-error]"), /Nieprawidłowy adres e-mail lub hasło/);
    assert.equal(await storedSession(page), null);
  });
  await context.close();
}

for (const role of ["admin", "manager", "advisor"]) {
  const { page, context, errors } = await session(role);
  await step(`${role}: menu shows exactly the screens of the role`, async () => {
    const nav = await page.$$eval("#nav a", (as) => as.map((a) => a.dataset.testid.replace("nav-", "")));
    for (const s of ["pulpit", "leady", "statystyki", "nieprzypisane"]) assert.ok(nav.includes(s), `${s} in ${nav}`);
    for (const s of ADMIN_SCREENS) assert.equal(nav.includes(s), role === "admin", `${s} for ${role}`);
    await page.waitForSelector("[data-testid=kpi-calls]");
    await shot(page, `${role}-01-pulpit`);
  });
  await step(`${role}: team statistics list only the advisors the role may see`, async () => {
    await go(page, "#/statystyki", "[data-testid=stats-table]");
    await page.selectOption("[data-testid=stats-period]", "30");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=stats-advisor]").length > 0, null, { timeout: 15_000 });
    await page.waitForSelector("[data-testid=stats-chart]");
    await rendered(page, "team statistics (30 days)");
    const names = await page.$$eval("[data-testid=stats-advisor] td:nth-child(2)", (tds) => tds.map((t) => t.textContent.trim()));
    const allowed = EXPECT.allowedAdvisors?.[role];
    if (allowed) {
      for (const n of names) assert.ok(allowed.includes(n), `${role} sees ${n}, allowed: ${allowed}`);
      for (const n of EXPECT.mustSee?.[role] || []) assert.ok(names.includes(n), `${role} must see ${n}; saw ${names}`);
    }
    await shot(page, `${role}-02-statystyki`);
  });
  await step(`${role}: lead list and a lead's call registry`, async () => {
    await go(page, "#/leady", "[data-testid=lead-table]");
    const owners = await page.$$eval("[data-testid=lead-table] tbody td:nth-child(3)", (tds) => tds.map((t) => t.textContent.trim()));
    const allowed = EXPECT.allowedAdvisors?.[role];
    if (allowed) for (const o of owners) assert.ok(allowed.includes(o), `${role} sees a lead of ${o}`);
    await shot(page, `${role}-03-leady`);
    await page.click("[data-testid=lead-table] tbody tr:first-child a");
    await page.waitForSelector("[data-testid=lead-name]");
    await page.waitForSelector("[data-testid=registry], [data-screen=lead] p.muted");
    await rendered(page, "lead details");
    await shot(page, `${role}-04-lead`);
  });
  await step(`${role}: unmatched calls`, async () => {
    await go(page, "#/nieprzypisane", "[data-screen=unmatched] #unm table, [data-screen=unmatched] #unm p");
    const advisors = await page.$$eval("[data-testid=unmatched-table] tbody td:nth-child(4)", (tds) => tds.map((t) => t.textContent.trim()));
    const allowed = EXPECT.allowedAdvisors?.[role];
    if (allowed) for (const a of advisors) assert.ok(allowed.includes(a), `${role} sees an unmatched call of ${a}`);
    await shot(page, `${role}-05-nieprzypisane`);
  });
  if (role !== "admin") {
    await step(`${role}: the queue is not reachable and its API answers nothing`, async () => {
      await page.evaluate(() => { location.hash = "#/kolejka"; });
      await page.waitForSelector("[data-screen=pulpit]");
      const rows = await page.evaluate(async (rest) => {
        const token = JSON.parse(sessionStorage.getItem("callsync.session")).access_token;
        const r = await fetch(`${rest}/queue_jobs?select=id&limit=5`, { headers: { Authorization: `Bearer ${token}` } });
        return (await r.json()).length;
      }, EXPECT.restUrl || (await page.evaluate(async () => (await (await fetch("config.json")).json()).restUrl)));
      assert.equal(rows, 0);
    });
  } else {
    await step("admin: queue screen, retry a discarded job and watch it complete", async () => {
      await go(page, "#/kolejka", "[data-testid=queue-depth]");
      await shot(page, "admin-06-kolejka");
      if (!EXPECT.discardedJob) return;
      const id = EXPECT.discardedJob;
      await page.waitForSelector(`[data-testid=retry-${id}]`);
      await page.click(`[data-testid=retry-${id}]`);
      await page.waitForFunction((jid) => !document.querySelector(`[data-testid=q-discarded] tr[data-job="${jid}"]`), id, { timeout: 15_000 });
      const stateOf = () => page.evaluate(async ({ rest, jid }) => {
        const token = JSON.parse(sessionStorage.getItem("callsync.session")).access_token;
        const r = await fetch(`${rest}/queue_jobs?select=state&id=eq.${jid}`, { headers: { Authorization: `Bearer ${token}` } });
        return (await r.json())[0]?.state;
      }, { rest: EXPECT.restUrl, jid: id });
      const deadline = Date.now() + 20_000;
      let s;
      while ((s = await stateOf()) !== "completed" && Date.now() < deadline) await page.waitForTimeout(200);
      assert.equal(s, "completed", "the retried job completes");
      await shot(page, "admin-07-kolejka-po-ponowieniu");
    });
    await step("admin: resend a CRM dispatch", async () => {
      await go(page, "#/crm", "[data-testid=crm-table]");
      await shot(page, "admin-08-crm");
      if (!EXPECT.crmEvent) return;
      const ev = EXPECT.crmEvent;
      const before = await page.$$eval("[data-testid=crm-table] tbody tr", (trs) => trs.length);
      await page.click(`[data-testid=resend-${ev}] >> nth=0`);
      await page.waitForFunction((n) => document.querySelectorAll("[data-testid=crm-table] tbody tr").length > n, before, { timeout: 30_000 });
      const first = await page.$eval("[data-testid=crm-table] tbody tr:first-child", (tr) => tr.textContent);
      assert.match(first, /success/);
      assert.match(first, /wymuszona/);
      await page.click("[data-testid=crm-table] tbody tr:first-child details summary");
      await shot(page, "admin-09-crm-po-ponownej-wysylce");
    });
    await step("admin: reconciliation runs, alerts and daily reports", async () => {
      await go(page, "#/uzgodnienia", "[data-screen=recon] #recon > *");
      await shot(page, "admin-10-uzgodnienia");
      await go(page, "#/alerty", "[data-screen=alerts] #reports > *");
      await shot(page, "admin-11-alerty");
    });
  }
  await step(`${role}: no JavaScript errors`, async () => assert.deepEqual(errors, []));
  await context.close();
}

// The session's life: refreshed when it is about to expire or PostgREST
// refuses it, back to the form when it cannot be refreshed, revoked at sign-out.
// A refused token is a 401 the browser logs, so errors are not asserted here.
{
  const { page, context } = await open();
  await signIn(page, "admin");
  const tamper = (change) => page.evaluate((c) => {
    const s = JSON.parse(sessionStorage.getItem("callsync.session"));
    sessionStorage.setItem("callsync.session", JSON.stringify({ ...s, ...c }));
  }, change);
  const config = await page.evaluate(async () => (await fetch("config.json")).json());
  const refreshWith = (token) => page.evaluate(async ({ token, config }) => {
    const base = new URL(config.authUrl.replace(/\/?$/, "/"), location.href);
    const r = await fetch(new URL("token?grant_type=refresh_token", base), {
      method: "POST", headers: { apikey: config.anonKey || "", "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: token }),
    });
    return r.status;
  }, { token, config });
  await step("session: an access token about to expire is refreshed before use", async () => {
    const before = await storedSession(page);
    await tamper({ expires_at: Math.floor(Date.now() / 1000) - 5 });
    await page.reload();
    await page.waitForSelector("[data-testid=who]");
    const after = await storedSession(page);
    // (the access token may come out identical: same claims within the same second)
    assert.notEqual(after.refresh_token, before.refresh_token, "a new session from the refresh grant");
    assert.ok(after.expires_at > Date.now() / 1000 + 600, "a fresh hour");
    assert.equal(await refreshWith(before.refresh_token), 400, "a used refresh token is spent");
  });
  await step("session: a token PostgREST refuses is refreshed once and the request retried", async () => {
    await tamper({ access_token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LXNpZ25lZA", expires_at: Math.floor(Date.now() / 1000) + 3600 });
    await page.reload();
    await page.waitForSelector("[data-testid=who]");
    assert.match(await page.textContent("[data-testid=who]"), /administrator/);
  });
  await step("session: a session that cannot be refreshed ends at the form, in Polish", async () => {
    await tamper({ access_token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LXNpZ25lZA", refresh_token: "spent", expires_at: 0 });
    await page.reload();
    await page.waitForSelector("[data-testid=login-notice]");
    assert.match(await page.textContent("[data-testid=login-notice]"), /Sesja wygasła/);
    assert.equal(await storedSession(page), null);
    await shot(page, "login-03-sesja-wygasla");
  });
  await step("session: sign-out returns to the form and revokes the refresh token", async () => {
    await signIn(page, "admin");
    const { refresh_token } = await storedSession(page);
    await page.click("#logout");
    await page.waitForSelector("[data-testid=login-email]");
    assert.equal(await storedSession(page), null);
    assert.equal(await refreshWith(refresh_token), 400, "the signed-out session cannot be refreshed");
    await page.reload();
    await page.waitForSelector("[data-testid=login-email]");
    assert.equal(await page.$("[data-testid=who]"), null);
  });
  await context.close();
}

await browser.close();
console.log(`render times (ms, measured in the page: request to table): ${JSON.stringify(timings)}`);
console.log(`screenshots: ${OUT}`);
if (failures) { console.log(`${failures} step(s) failed`); process.exit(1); }
