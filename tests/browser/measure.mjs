// Render times of the console's lead details and team statistics, measured in
// headless Chromium (playwright-core), reported and never asserted. Point it at
// a console whose database holds the benchmark dataset:
//   CONSOLE_URL=http://127.0.0.1:54323/ LEAD_ID=42 node tests/browser/measure.mjs
// Each figure: from the navigation (hash change or period change) until the
// table is in the page, wall clock in the test, median of RUNS runs.
import { launch, signIn } from "./signin.mjs";

const CONSOLE_URL = process.env.CONSOLE_URL || "http://127.0.0.1:54323/";
const RUNS = Number(process.env.RUNS || 5);

const browser = await launch();
const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
await page.goto(CONSOLE_URL);
await signIn(page, "admin");
await page.waitForSelector("[data-testid=kpi-calls]", { timeout: 120_000 });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timed(action, ready) {
  const t0 = Date.now();
  await action();
  await page.waitForFunction(ready, null, { timeout: 120_000 });
  return Date.now() - t0;
}
const results = {};
const record = (k, ms) => (results[k] ||= []).push(ms);

for (let i = 0; i < RUNS; i++) {
  await page.evaluate(() => { location.hash = "#/pulpit"; });
  await page.waitForSelector("[data-screen=pulpit]");
  record("lead details (50 newest calls + count)", await timed(
    () => page.evaluate((id) => { location.hash = `#/leady/${id}`; }, process.env.LEAD_ID || "1"),
    () => !!document.querySelector("[data-testid=registry]")));
  await page.evaluate(() => { location.hash = "#/pulpit"; });
  await page.waitForSelector("[data-screen=pulpit]");
  record("team statistics, 7 days", await timed(
    () => page.evaluate(() => { location.hash = "#/statystyki"; }),
    () => document.querySelectorAll("[data-testid=stats-advisor]").length > 0));
  for (const days of ["1", "30"]) {
    record(`team statistics, ${days === "1" ? "today" : "30 days"}`, await timed(
      async () => {
        await page.evaluate(() => { for (const r of document.querySelectorAll("[data-testid=stats-table] tbody tr")) r.remove(); });
        await page.selectOption("[data-testid=stats-period]", days);
      },
      () => document.querySelectorAll("[data-testid=stats-advisor]").length > 0 || !!document.querySelector(".notice.err")));
    const err = await page.$eval(".notice.err", (e) => e.textContent).catch(() => null);
    if (err) { record(`team statistics, ${days === "1" ? "today" : "30 days"}: ERROR ${err}`, 0); await page.evaluate(() => document.querySelector(".notice.err")?.remove()); }
  }
  await page.evaluate(() => { location.hash = "#/pulpit"; });
  await page.waitForSelector("[data-screen=pulpit]");
  record("lead list (50 leads by last call)", await timed(
    () => page.evaluate(() => { location.hash = "#/leady"; }),
    () => !!document.querySelector("[data-testid=lead-table]")));
}
await browser.close();
for (const [k, v] of Object.entries(results)) console.log(`${k}: median ${median(v)} ms (runs: ${v.join(", ")})`);
