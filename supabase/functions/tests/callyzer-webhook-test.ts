// callyzer-webhook with injected fakes: the RPC is a recorder, the HMAC is
// computed here independently (WebCrypto directly).
import { hasDeliveryShape, isJsonContentType, makeHandler, maxBytesFrom, urlToken } from "../callyzer-webhook/handler.ts";
import type { RpcResult } from "../_shared/rpc.ts";

const TOKEN = "tok_0123456789abcdef";
const BODY = JSON.stringify([{
  emp_name: "Olga", emp_code: "SALES-07", emp_country_code: "48", emp_number: "600100200",
  call_logs: [{ id: "cz-1", client_number: "600200300", duration: 5, call_type: "Outgoing", call_date: "2026-01-01", call_time: "10:00:00" }],
}]);
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

type Opts = { tokenHeader?: string; hmacSecret?: string; storeStatus?: number; maxBytes?: number; throws?: boolean };

function setup(o: Opts = {}) {
  const calls: { fn: string; args: Record<string, unknown> }[] = [];
  const handler = makeHandler({
    token: TOKEN,
    tokenHeader: o.tokenHeader ?? "",
    hmacSecret: o.hmacSecret ?? "",
    hmacHeader: "x-callyzer-signature",
    maxBytes: o.maxBytes ?? 1024,
    rpc: (fn, args): Promise<RpcResult> => {
      calls.push({ fn, args });
      if (fn === "ingest_callyzer_webhook") {
        if (o.throws) return Promise.reject(new Error("connection refused"));
        return Promise.resolve({ status: o.storeStatus ?? 200, body: { event_id: 3, job_id: 9, duplicate: false } });
      }
      return Promise.resolve({ status: 204, body: null });
    },
  });
  const call = (url: string, init: RequestInit = {}) =>
    handler(new Request(url, { method: "POST", headers: { "content-type": "application/json" }, body: BODY, ...init }), { remoteAddr: "10.0.0.1" });
  const rejection = () => calls.find((c) => c.fn === "log_webhook_rejection")?.args;
  return { calls, call, rejection };
}

Deno.test("a delivery with the token in the query is stored raw with one RPC and answered 200", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=${TOKEN}`);
  assertEquals(res.status, 200);
  assertEquals(await res.json(), { received: true, event_id: 3, duplicate: false });
  assertEquals(t.calls.map((c) => c.fn), ["ingest_callyzer_webhook"]);
  assertEquals(t.calls[0].args.p_raw, BODY, "the raw body is forwarded byte for byte");
  assertEquals(t.calls[0].args.p_client_addr, "10.0.0.1");
});

Deno.test("the token may be the last path segment", async () => {
  const t = setup();
  assertEquals((await t.call(`${BASE}/${TOKEN}`)).status, 200);
});

Deno.test("the token may come in the configured header", async () => {
  const t = setup({ tokenHeader: "x-callyzer-secret" });
  const res = await t.call(BASE, { headers: { "content-type": "application/json", "x-callyzer-secret": TOKEN } });
  assertEquals(res.status, 200);
});

Deno.test("a wrong token is refused with 401 bad_secret and logged without the secret", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=nope`);
  assertEquals(res.status, 401);
  assertEquals(await res.json(), { error: "bad_secret" });
  const logged = t.rejection()!;
  assertEquals([logged.p_source, logged.p_reason, logged.p_status_code], ["callyzer", "bad_secret", 401]);
  if (JSON.stringify(t.calls).includes(TOKEN) || JSON.stringify(t.calls).includes("nope")) {
    throw new Error("a secret reached the log");
  }
  assertEquals(t.calls.some((c) => c.fn === "ingest_callyzer_webhook"), false);
});

Deno.test("no token at all is refused with 401 missing_secret", async () => {
  const t = setup();
  const res = await t.call(BASE);
  assertEquals(res.status, 401);
  assertEquals(t.rejection()!.p_reason, "missing_secret");
});

Deno.test("a valid HMAC signature is accepted without a token", async () => {
  const t = setup({ hmacSecret: "hk" });
  const sig = await hmacHex("hk", BODY);
  const res = await t.call(BASE, { headers: { "content-type": "application/json", "x-callyzer-signature": `sha256=${sig}` } });
  assertEquals(res.status, 200);
});

Deno.test("a wrong HMAC signature is refused even next to a valid token", async () => {
  const t = setup({ hmacSecret: "hk" });
  const sig = await hmacHex("other", BODY);
  const res = await t.call(`${BASE}?token=${TOKEN}`, { headers: { "content-type": "application/json", "x-callyzer-signature": sig } });
  assertEquals(res.status, 401);
  assertEquals(t.rejection()!.p_reason, "bad_signature");
});

Deno.test("a declared oversized body is refused with 413 before it is read", async () => {
  const t = setup({ maxBytes: 10 });
  const res = await t.call(`${BASE}?token=${TOKEN}`, { headers: { "content-type": "application/json", "content-length": String(BODY.length) } });
  assertEquals(res.status, 413);
  assertEquals(t.rejection()!.p_reason, "too_large");
});

Deno.test("a streamed body is counted and refused with 413 once it passes the cap", async () => {
  const t = setup({ maxBytes: 10 });
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(BODY));
      c.close();
    },
  });
  const res = await t.call(`${BASE}?token=${TOKEN}`, { body: stream });
  assertEquals(res.status, 413);
});

Deno.test("a non-JSON content type is refused with 415", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=${TOKEN}`, { headers: { "content-type": "text/plain" } });
  assertEquals(res.status, 415);
  assertEquals(t.rejection()!.p_reason, "not_json_content_type");
});

Deno.test("malformed JSON is refused with 400 bad_json", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=${TOKEN}`, { body: "[{" });
  assertEquals(res.status, 400);
  assertEquals(t.rejection()!.p_reason, "bad_json");
});

Deno.test("JSON of the wrong shape is refused with 400 bad_shape", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=${TOKEN}`, { body: '{"hello":"world"}' });
  assertEquals(res.status, 400);
  assertEquals(t.rejection()!.p_reason, "bad_shape");
});

Deno.test("GET is refused with 405", async () => {
  const t = setup();
  const res = await t.call(`${BASE}?token=${TOKEN}`, { method: "GET", body: undefined });
  assertEquals(res.status, 405);
});

Deno.test("a failing store answers 503 so Callyzer retries", async () => {
  assertEquals((await setup({ storeStatus: 500 }).call(`${BASE}?token=${TOKEN}`)).status, 503);
  assertEquals((await setup({ throws: true }).call(`${BASE}?token=${TOKEN}`)).status, 503);
});

Deno.test("helpers: tokens, content types, shapes, caps", () => {
  assertEquals(urlToken(new URL(`${BASE}/abc`)), "abc");
  assertEquals(urlToken(new URL(BASE)), null);
  assertEquals(isJsonContentType("application/json; charset=utf-8"), true);
  assertEquals(isJsonContentType("application/vnd.callyzer+json"), true);
  assertEquals(isJsonContentType("text/json"), false);
  assertEquals(isJsonContentType(null), false);
  assertEquals(hasDeliveryShape([]), true);
  assertEquals(hasDeliveryShape({ result: [{}] }), true);
  assertEquals(hasDeliveryShape([1]), false);
  assertEquals(hasDeliveryShape("x"), false);
  assertEquals(maxBytesFrom(undefined), 1024 * 1024);
  assertEquals(maxBytesFrom("abc"), 1024 * 1024);
  assertEquals(maxBytesFrom("2048"), 2048);
});
