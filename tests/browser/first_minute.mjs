// The README's promise, checked in a browser: within DEADLINE_S (60) seconds of
// the stack being ready, the console, signed in as admin through its form,
// shows calls arriving, calls matched to leads and unmatched ones, team
// statistics moving, and a reconciliation run that recovered dropped webhooks
// (new calls > 0). Every condition is waited on, none slept for; each is
// reported with the seconds since READY_AT (ms since the epoch; default: when
// this script starts). Run by tests/console_browser.rs; by hand, start it as
// soon as scripts/dev.sh prints "callsync is running":
//   CONSOLE_URL=http://127.0.0.1:54323/ node tests/browser/first_minute.mjs
import fs from "node:fs";
import path from "node:path";
import { launch, signIn } from "./signin.mjs";

const CONSOLE_URL = process.env.CONSOLE_URL || "http://127.0.0.1:54323/";
const OUT = process.env.ARTIFACTS_DIR || path.resolve(path.dirname(new URL(import.meta.url).pathname), "../artifacts/console");
const READY_AT = Number(process.env.READY_AT || Date.now());
const DEADLINE = READY_AT + 1000 * Number(process.env.DEADLINE_S || 60);
fs.mkdirSync(OUT, { recursive: true });
fs.rmSync(path.join(OUT, "first-minute-failed.png"), { force: true });  // an earlier run's

const seen = {};
const since = () => Number(((Date.now() - READY_AT) / 1000).toFixed(1));
const left = () => Math.max(1, DEADLINE - Date.now());
const digits = (s) => Number(String(s || "").replace(/[^\d]/g, "") || 0);

const browser = await launch();
const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: "pl-PL", timezoneId: "Europe/Warsaw" })).newPage();
let failed = null;
async function until(name, fn, arg) {
  await page.waitForFunction(fn, arg, { timeout: left(), polling: 100 });
  seen[name] = since();
  console.log(`${String(seen[name]).padStart(5)} s  ${name}`);
}
try {
  await page.goto(CONSOLE_URL, { timeout: left() });
  await signIn(page, "admin", left());
  seen["signed in as admin"] = since();

  // Pulpit: today's calls (a number that grows), the newest calls matched to a
  // lead, and the newest unmatched ones
  const kpi = () => page.$eval("[data-testid=kpi-calls] b", (b) => b.textContent).then(digits).catch(() => 0);
  await until("dashboard: calls today > 0", () => Number((document.querySelector("[data-testid=kpi-calls] b")?.textContent || "").replace(/[^\d]/g, "") || 0) > 0);
  const first = await kpi();
  await until("dashboard: calls arriving (today's count grew)", (n) => Number((document.querySelector("[data-testid=kpi-calls] b")?.textContent || "").replace(/[^\d]/g, "") || 0) > n, first);
  await until("dashboard: calls matched to leads", () => document.querySelectorAll("[data-testid=registry] tbody tr").length > 0);
  await until("dashboard: unmatched calls", () => document.querySelectorAll("[data-testid=unmatched-table] tbody tr").length > 0);
  await page.screenshot({ path: path.join(OUT, "first-minute-1-pulpit.png"), fullPage: true });

  // Statystyki zespołu, today: the teams' totals above zero, then growing
  await page.evaluate(() => { location.hash = "#/statystyki"; });
  await page.waitForSelector("[data-testid=stats-period]", { timeout: left() });
  await page.selectOption("[data-testid=stats-period]", "1");
  // only a table drawn from today's figures counts (not the first, 7-day one)
  const total = () => Array.from(document.querySelectorAll("[data-testid=stats-table][data-period='1'] [data-testid=stats-total] td:nth-child(8)"))
    .reduce((a, td) => a + Number(td.textContent.replace(/[^\d]/g, "") || 0), 0);
  await until("team statistics: today's total > 0", `(${total})() > 0`);
  const before = await page.evaluate(`(${total})()`);
  await until("team statistics: moving (today's total grew)", `(${total})() > ${before}`);
  await page.screenshot({ path: path.join(OUT, "first-minute-2-statystyki.png"), fullPage: true });

  // Uzgodnienia: a finished run that brought in calls the webhooks lost
  await page.evaluate(() => { location.hash = "#/uzgodnienia"; });
  await until("reconciliation: a succeeded run with new calls > 0", () =>
    Array.from(document.querySelectorAll("[data-testid=recon-table] tbody tr")).some((tr) =>
      /succeeded/.test(tr.children[11]?.textContent || "") && Number(tr.children[6]?.textContent.replace(/[^\d]/g, "") || 0) > 0));
  await page.screenshot({ path: path.join(OUT, "first-minute-3-uzgodnienia.png"), fullPage: true });
} catch (e) {
  failed = e;
  await page.screenshot({ path: path.join(OUT, "first-minute-failed.png"), fullPage: true }).catch(() => {});
}
await browser.close();
console.log(`FIRST_MINUTE ${JSON.stringify(seen)}`);
if (failed) {
  console.log(`FAIL not everything within ${(DEADLINE - READY_AT) / 1000} s of ready (at ${since()} s): ${failed.message}`);
  process.exit(1);
}
console.log(`ok   everything shown ${since()} s after the stack was ready (deadline ${(DEADLINE - READY_AT) / 1000} s)`);
