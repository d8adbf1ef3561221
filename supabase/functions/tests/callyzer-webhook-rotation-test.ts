// Secret rotation without losing deliveries (docs/runbooks.md, "Rotate the
// webhook secrets"): while CALLYZER_WEBHOOK_TOKEN_PREVIOUS (or
// CALLYZER_WEBHOOK_HMAC_SECRET_PREVIOUS) is set, the old and the new secret
// are both accepted; a third one never is.
import { makeHandler } from "../callyzer-webhook/handler.ts";
import type { RpcResult } from "../_shared/rpc.ts";

const BODY = JSON.stringify([{ emp_name: "Olga", emp_number: "600100200", call_logs: [] }]);
const BASE = "http://x/functions/v1/callyzer-webhook";

function assertEquals(actual: unknown, expected: unknown, msg?: string) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}: got ${a}, want ${e}`);
}

async function hmacHex(key: string, body: string): Promise<string> {
  const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(body)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

function handler(o: { token?: string; previousToken?: string; hmacSecret?: string; previousHmacSecret?: string }) {
  const reasons: unknown[] = [];
  const h = makeHandler({
    token: o.token ?? "",
    previousToken: o.previousToken,
    tokenHeader: "x-callyzer-token",
    hmacSecret: o.hmacSecret ?? "",
    previousHmacSecret: o.previousHmacSecret,
    hmacHeader: "x-callyzer-signature",
    maxBytes: 1024,
    rpc: (fn, args): Promise<RpcResult> => {
      if (fn === "log_webhook_rejection") reasons.push(args.p_reason);
      return Promise.resolve({ status: 200, body: { event_id: 1, job_id: 1, duplicate: false } });
    },
  });
  const post = (url: string, headers: Record<string, string> = {}) =>
    h(new Request(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: BODY }), { remoteAddr: "10.0.0.1" });
  return { post, reasons };
}

Deno.test("during a token rotation the new and the previous token are both accepted, in the URL and the header", async () => {
  const t = handler({ token: "new-token-0123456789", previousToken: "old-token-0123456789" });
  assertEquals((await t.post(`${BASE}?token=new-token-0123456789`)).status, 200);
  assertEquals((await t.post(`${BASE}/old-token-0123456789`)).status, 200, "old token in the path");
  assertEquals((await t.post(BASE, { "x-callyzer-token": "old-token-0123456789" })).status, 200, "old token in the header");
  assertEquals((await t.post(`${BASE}?token=some-other-token`)).status, 401);
  assertEquals(t.reasons, ["bad_secret"]);
});

Deno.test("after the rotation (previous unset) the old token is refused", async () => {
  const t = handler({ token: "new-token-0123456789" });
  assertEquals((await t.post(`${BASE}?token=old-token-0123456789`)).status, 401);
  assertEquals(t.reasons, ["bad_secret"]);
});

Deno.test("during an HMAC key rotation signatures by either key are accepted", async () => {
  const t = handler({ hmacSecret: "new-key", previousHmacSecret: "old-key" });
  for (const key of ["new-key", "old-key"]) {
    const res = await t.post(BASE, { "x-callyzer-signature": `sha256=${await hmacHex(key, BODY)}` });
    assertEquals(res.status, 200, `signed with ${key}`);
  }
  const res = await t.post(BASE, { "x-callyzer-signature": await hmacHex("third-key", BODY) });
  assertEquals(res.status, 401);
  assertEquals(t.reasons, ["bad_signature"]);
});
