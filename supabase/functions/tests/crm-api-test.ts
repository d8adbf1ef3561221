// crm-api with an injected RPC: routes, the caller's token passed through,
// PostgREST's refusals relayed.
import { makeHandler } from "../crm-api/handler.ts";
import type { RpcResult } from "../_shared/rpc.ts";

function assertEquals(actual: unknown, expected: unknown, msg?: string) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}: got ${a}, want ${e}`);
}

function setup(answer: RpcResult = { status: 200, body: { event_id: 3, job_id: 9, queued: true } }) {
  const calls: { fn: string; args: Record<string, unknown>; token?: string }[] = [];
  const handler = makeHandler({
    maxBytes: 1024,
    rpc: (fn, args, token) => {
      calls.push({ fn, args, token });
      return Promise.resolve(answer);
    },
  });
  const call = (path: string, init: RequestInit = {}) =>
    handler(new Request(`http://x/functions/v1/crm-api${path}`, { method: "POST", ...init }));
  return { calls, call };
}

Deno.test("analyze passes the event and the caller's token to the admin RPC", async () => {
  const { calls, call } = setup();
  const res = await call("/analyze", {
    headers: { Authorization: "Bearer user.jwt.token" },
    body: JSON.stringify({ conversation_id: "c1", transcript: "hi" }),
  });
  assertEquals(res.status, 202);
  assertEquals(calls, [{ fn: "elevenlabs_analyze", args: { p_event: { conversation_id: "c1", transcript: "hi" } }, token: "user.jwt.token" }]);
});

Deno.test("resend with force=true asks for a forced dispatch of that event", async () => {
  const { calls, call } = setup();
  const res = await call("/events/42/resend-crm?force=true", { headers: { Authorization: "Bearer t" } });
  assertEquals(res.status, 202);
  assertEquals(calls[0].args, { p_event_id: 42, p_force: true });
});

Deno.test("resend without force is not forced", async () => {
  const { calls, call } = setup();
  await call("/events/42/resend-crm", { headers: { Authorization: "Bearer t" } });
  assertEquals(calls[0].args, { p_event_id: 42, p_force: false });
});

Deno.test("a request without a token is refused without calling the database", async () => {
  const { calls, call } = setup();
  const res = await call("/analyze", { body: "{}" });
  assertEquals(res.status, 401);
  assertEquals(calls.length, 0);
});

Deno.test("a non-admin's refusal by the database is relayed as 403", async () => {
  const { call } = setup({ status: 403, body: { code: "42501", message: "only admins may resend events to the CRM" } });
  const res = await call("/events/1/resend-crm", { headers: { Authorization: "Bearer t" } });
  assertEquals(res.status, 403);
  assertEquals((await res.json()).error, "only admins may resend events to the CRM");
});

Deno.test("unknown paths are 404 and other methods 405", async () => {
  const { call } = setup();
  assertEquals((await call("/events/x/resend-crm", { headers: { Authorization: "Bearer t" } })).status, 404);
  assertEquals((await call("/analyze", { method: "GET", headers: { Authorization: "Bearer t" } })).status, 405);
});

Deno.test("a body that is not a JSON object is refused with 400", async () => {
  const { calls, call } = setup();
  const res = await call("/analyze", { headers: { Authorization: "Bearer t" }, body: "[1]" });
  assertEquals(res.status, 400);
  assertEquals(calls.length, 0);
});
