// What the browser scripts share: launching Debian's Chromium through npm
// playwright-core (tools/node_modules), and signing in to the console through
// its form (Supabase Auth's password grant; locally the simulator's stand-in,
// `callsync simulate --local-login`, with the seed's demo users).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("../../tools/node_modules/playwright-core");

// The local demo's accounts (src/simulate/auth.rs); never valid anywhere else.
export const DEMO_PASSWORD = process.env.DEMO_PASSWORD || "callsync-demo";
export const DEMO_EMAILS = {
  admin: "admin@callsync.test",
  manager: "kierownik@callsync.test",
  advisor: "doradca@callsync.test",
};

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Types the role's e-mail and `password` into the form and submits it.
export async function submitSignIn(page, role, password = DEMO_PASSWORD, timeout = 30_000) {
  await page.waitForSelector("[data-testid=login-email]", { timeout });
  await page.fill("[data-testid=login-email]", DEMO_EMAILS[role] || role);
  await page.fill("[data-testid=login-password]", password);
  await page.click("[data-testid=login-submit]");
}

// Signs in as `role` and waits until the console shows who is signed in.
export async function signIn(page, role, timeout = 30_000) {
  await submitSignIn(page, role, DEMO_PASSWORD, timeout);
  await page.waitForSelector("[data-testid=who]", { timeout });
}

// The session the console keeps for this tab (access and refresh token, expiry).
export function session(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem("callsync.session") || "null"));
}
