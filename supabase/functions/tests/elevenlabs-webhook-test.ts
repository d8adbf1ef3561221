// elevenlabs-webhook with injected fakes: the signature is computed here
// independently (WebCrypto directly), the RPC is a recorder.
import { makeHandler, parseSignatureHeader } from "../elevenlabs-webhook/handler.ts";
import type { RpcResult } from "../_shared/rpc.ts";

const SECRET = "whsec_demo";
const NOW = 1767225600;
const BODY = '{"type":"post_call_transcription","data":{"conversation_id":"conv_1","agent_id":"a1"}}';

function assertEquals(actual: unknown, expected: unknown, msg?: string) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}: got ${a}, want ${e}`);
}

async function sign(secret: string, t: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${t}.${body}`)));
  return `t=${t},v0=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function setup(secrets = [SECRET], storeStatus = 200) {
  const calls: { fn: string; args: Record<string, unknown> }[] = [];
  const handler = makeHandler({
    secrets,
    now: () => NOW,
    maxBytes: 1024,
    rpc: (fn, args): Promise<RpcResult> => {
      calls.push({ fn, args });
      if (fn === "receive_elevenlabs_webhook") {
        return Promise.resolve({ status: storeStatus, body: { event_id: 7, duplicate: false } });
      }
      return Promise.resolve({ status: 204, body: null });
    },
  });
  const call = (headers: Record<string, string>, body = BODY, method = "POST") =>
    handler(new Request("http://x/functions/v1/elevenlabs-webhook", { method, headers, body: method === "GET" ? undefined : body }), { remoteAddr: "10.0.0.1" });
  return { calls, call };
}

Deno.test("a correctly signed event is stored with one RPC and answered 200", async () => {
  const { calls, call } = setup();
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW - 10, BODY) });
  assertEquals(res.status, 200);
  assertEquals(calls.map((c) => c.fn), ["receive_elevenlabs_webhook"]);
  assertEquals((calls[0].args.p_body as Record<string, unknown>).type, "post_call_transcription");
  assertEquals(calls[0].args.p_size_bytes, new TextEncoder().encode(BODY).length);
});

Deno.test("the previous secret is still accepted during a rotation", async () => {
  const { call } = setup(["whsec_new", SECRET]);
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW, BODY) });
  assertEquals(res.status, 200);
});

for (const [name, headers, body, reason] of [
  ["a wrong secret", async () => ({ "ElevenLabs-Signature": await sign("whsec_other", NOW, BODY) }), BODY, "bad_signature"],
  ["a stale timestamp", async () => ({ "ElevenLabs-Signature": await sign(SECRET, NOW - 31 * 60, BODY) }), BODY, "stale_timestamp"],
  ["a future timestamp", async () => ({ "ElevenLabs-Signature": await sign(SECRET, NOW + 6 * 60, BODY) }), BODY, "future_timestamp"],
  ["a tampered body", async () => ({ "ElevenLabs-Signature": await sign(SECRET, NOW, BODY) }), BODY.replace("conv_1", "conv_2"), "bad_signature"],
  ["a missing header", () => Promise.resolve({}), BODY, "missing_signature"],
  ["a header without v0", () => Promise.resolve({ "ElevenLabs-Signature": `t=${NOW}` }), BODY, "bad_signature_header"],
] as const) {
  Deno.test(`${name} is refused with 401, logged, and nothing is stored`, async () => {
    const { calls, call } = setup();
    const res = await call(await headers(), body);
    assertEquals(res.status, 401);
    assertEquals(calls.map((c) => c.fn), ["log_webhook_rejection"]);
    assertEquals(calls[0].args.p_reason, reason);
    assertEquals(calls[0].args.p_status_code, 401);
  });
}

Deno.test("an oversized body is refused with 413 before its signature is checked", async () => {
  const { calls, call } = setup();
  const big = JSON.stringify({ type: "post_call_transcription", pad: "x".repeat(2000) });
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW, big) }, big);
  assertEquals(res.status, 413);
  assertEquals(calls[0].args.p_reason, "too_large");
});

Deno.test("a signed body that is not JSON is refused with 400", async () => {
  const { calls, call } = setup();
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW, "not json") }, "not json");
  assertEquals(res.status, 400);
  assertEquals(calls[0].args.p_reason, "not_json");
});

Deno.test("a GET is refused with 405", async () => {
  const { calls, call } = setup();
  const res = await call({}, "", "GET");
  assertEquals(res.status, 405);
  assertEquals(calls[0].args.p_reason, "method_not_allowed");
});

Deno.test("a database failure answers 503 so ElevenLabs may retry", async () => {
  const { call } = setup([SECRET], 500);
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW, BODY) });
  assertEquals(res.status, 503);
});

Deno.test("without a configured secret every request is refused", async () => {
  const { calls, call } = setup([]);
  const res = await call({ "ElevenLabs-Signature": await sign(SECRET, NOW, BODY) });
  assertEquals(res.status, 500);
  assertEquals(calls[0].args.p_reason, "not_configured");
});

Deno.test("the signature header may carry several v0 entries", () => {
  assertEquals(parseSignatureHeader("t=5, v0=AA,v0=bb"), { t: 5, v0: ["aa", "bb"] });
  assertEquals(parseSignatureHeader("v0=aa"), null);
});
