// Property-style fuzzing of the TypeScript side that reads outside input: the
// ElevenLabs signature header parser, the constant-time compare, the jsonb
// safety check, and both webhook handlers end to end (fake RPC). A seeded
// PRNG (xorshift32) makes every run reproducible; CASES (env FUZZ_CASES,
// default 1,000) bounds CI time. Properties: nothing throws, every answer is
// one of the documented statuses, a valid signature always verifies and a
// changed one never does, and what is stored is jsonb-safe.
import { makeHandler as elevenlabs, parseSignatureHeader } from "../elevenlabs-webhook/handler.ts";
import { isJsonContentType, makeHandler as callyzer, urlToken } from "../callyzer-webhook/handler.ts";
import { jsonForPostgres, MAX_JSON_DEPTH, timingSafeEqual } from "../_shared/http.ts";
import type { RpcResult } from "../_shared/rpc.ts";

const CASES = Number(Deno.env.get("FUZZ_CASES") ?? "1000");
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? "20261120");

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const ALPHABET = ["t", "v0", "v1", "=", ",", " ", "0", "9", "a", "f", "\u0000", "\ud800", "é", "\r\n", ";", "-", "1767225600", "sha256="];
  const str = (max = 40) => Array.from({ length: int(max) }, () => pick(ALPHABET)).join("");
  const json = (depth = 0): unknown => {
    const k = int(depth > 4 ? 5 : 8);
    if (k === 0) return null;
    if (k === 1) return next() < 0.5;
    if (k === 2) return pick([0, -1, 1e308, 1.5, Infinity, -Infinity, 2 ** 53 + 1]);
    if (k === 3 || k === 4) return str(12);
    if (k === 5 || k === 6) return Array.from({ length: int(4) }, () => json(depth + 1));
    return Object.fromEntries(Array.from({ length: int(4) }, () => [str(6), json(depth + 1)]));
  };
  return { next, int, pick, str, json };
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sign(secret: string, t: number, body: Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const msg = new Uint8Array([...new TextEncoder().encode(`${t}.`), ...body]);
  return `t=${t},v0=${hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, msg)))}`;
}

function fakeRpc(stored: unknown[]) {
  return (fn: string, args: Record<string, unknown>): Promise<RpcResult> => {
    if (fn === "log_webhook_rejection") return Promise.resolve({ status: 204, body: null });
    stored.push(args);
    return Promise.resolve({ status: 200, body: { event_id: stored.length, duplicate: false } });
  };
}

/** What Postgres jsonb refuses, or the worker cannot read back. */
function jsonbUnsafe(text: string): string | null {
  if (/\\u0000/i.test(text)) return "an escaped NUL";
  if (!text.isWellFormed() || /\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i.test(text)) return "an unpaired surrogate";
  if (/Infinity|NaN/.test(text)) return "a non-finite number";
  return null;
}

Deno.test("the signature header parser never throws and returns only a bounded t and v0 values", () => {
  const r = rng(SEED);
  for (let i = 0; i < CASES * 5; i++) {
    const header = r.str(60);
    const parsed = parseSignatureHeader(header);
    if (parsed !== null) {
      assert(Number.isSafeInteger(parsed.t) && parsed.t >= 0 && parsed.t < 1e12, `t ${parsed.t} from ${JSON.stringify(header)}`);
      assert(parsed.v0.length > 0 && parsed.v0.every((v) => v.length > 0), `v0 from ${JSON.stringify(header)}`);
    }
  }
});

Deno.test("a header built from t and v0 values parses back to them, in any order and spacing", () => {
  const r = rng(SEED + 1);
  for (let i = 0; i < CASES; i++) {
    const t = r.int(2_000_000_000);
    const v0 = Array.from({ length: 1 + r.int(3) }, () => hex(crypto.getRandomValues(new Uint8Array(32))));
    const parts = [`t=${t}`, ...v0.map((v) => `v0=${v}`), ...(r.next() < 0.5 ? ["v1=zz"] : [])];
    parts.sort(() => r.next() - 0.5);
    const header = parts.join(r.pick([",", ", ", " ,"]));
    const parsed = parseSignatureHeader(header);
    assert(parsed !== null && parsed.t === t, `t lost from ${header}`);
    assert(JSON.stringify([...parsed.v0].sort()) === JSON.stringify([...v0].sort()), `v0 lost from ${header}`);
  }
});

Deno.test("the constant-time compare agrees with === on any strings", () => {
  const r = rng(SEED + 2);
  for (let i = 0; i < CASES * 5; i++) {
    const a = r.str(10);
    const b = r.next() < 0.3 ? a : r.str(10);
    assert(timingSafeEqual(a, b) === (a === b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

Deno.test("jsonForPostgres leaves only jsonb-safe values and refuses only what is too deep", () => {
  const r = rng(SEED + 3);
  for (let i = 0; i < CASES; i++) {
    const v = r.json();
    const checked = jsonForPostgres(v);
    assert(checked.ok, "shallow values are never refused");
    const text = JSON.stringify(checked.value);
    const bad = jsonbUnsafe(text);
    assert(bad === null, `${bad} survives in ${text}`);
    if (!checked.changed) assert(text === JSON.stringify(v), "unchanged means unchanged");
  }
  let deep: unknown = 1;
  for (let d = 0; d < MAX_JSON_DEPTH; d++) deep = [deep];
  assert(jsonForPostgres(deep).ok, `${MAX_JSON_DEPTH} levels are allowed`);
  assert(!jsonForPostgres([deep]).ok, `${MAX_JSON_DEPTH + 1} levels are refused`);
});

Deno.test("the ElevenLabs handler answers every random request with a documented status and verifies exactly the valid signatures", async () => {
  const r = rng(SEED + 4);
  const SECRET = "whsec_fuzz";
  const NOW = 1767225600;
  const stored: unknown[] = [];
  const handler = elevenlabs({ secrets: [SECRET], now: () => NOW, maxBytes: 4096, rpc: fakeRpc(stored) });
  for (let i = 0; i < CASES; i++) {
    const body = new TextEncoder().encode(
      r.next() < 0.6 ? JSON.stringify({ type: r.str(8), data: r.json() }) : r.str(80),
    );
    const t = NOW - 3000 + r.int(3600);
    const valid = await sign(SECRET, t, body);
    const mode = r.int(4);
    // what can travel in an HTTP header: visible Latin-1, spaces and tabs
    const wild = r.str(80).replace(/[^\t\x20-\x7e\xa0-\xff]/g, "");
    const header = mode === 0 ? valid : mode === 1 ? valid.slice(0, -1) + (valid.endsWith("0") ? "1" : "0") : mode === 2 ? wild : `t=${t},v0=${"0".repeat(64)}`;
    const before = stored.length;
    const res = await handler(
      new Request("http://x/functions/v1/elevenlabs-webhook", { method: "POST", headers: { "ElevenLabs-Signature": header }, body }),
      { remoteAddr: "10.0.0.1" },
    );
    assert([200, 400, 401, 413].includes(res.status), `status ${res.status}`);
    const fresh = t >= NOW - 1800 && t <= NOW + 300;
    if (mode !== 0 || !fresh) {
      assert(res.status === 401 || mode === 2 && res.status !== 200, `mode ${mode}, fresh ${fresh}: ${res.status}`);
      assert(stored.length === before, "a refused request stored something");
    } else {
      assert(res.status !== 401, "a valid, fresh signature was refused");
    }
    if (res.status === 200) {
      const bad = jsonbUnsafe(JSON.stringify(stored[stored.length - 1]));
      assert(bad === null, `${bad} sent to the database`);
    }
  }
});

Deno.test("the Callyzer handler answers every random request with a documented status and stores only jsonb-safe text", async () => {
  const r = rng(SEED + 5);
  const TOKEN = "cz-fuzz-token";
  const stored: { p_raw: string }[] = [];
  const handler = callyzer({
    token: TOKEN,
    tokenHeader: "x-callyzer-secret",
    hmacSecret: "",
    hmacHeader: "x-callyzer-signature",
    maxBytes: 4096,
    rpc: fakeRpc(stored as unknown[]),
  });
  for (let i = 0; i < CASES; i++) {
    const shape = r.int(3);
    const body = shape === 0
      ? JSON.stringify([{ emp_code: r.str(5), call_logs: [r.json(), r.json()] }])
      : shape === 1 ? JSON.stringify(r.json()) : r.str(80);
    const url = `http://x/functions/v1/callyzer-webhook${
      r.pick(["?token=" + TOKEN, "?token=" + encodeURIComponent(r.str(8).toWellFormed()), "", "/" + TOKEN, "/%E0%A4%A", "/%", "/a%2"])
    }`;
    assert(typeof isJsonContentType(r.str(20)) === "boolean", "content type check");
    urlToken(new URL("http://x/functions/v1/callyzer-webhook/" + r.pick(["%", "%zz", "%E0%A4%A", "%ED%A0%80", encodeURIComponent(r.str(10).toWellFormed())])));
    const method = r.pick(["POST", "POST", "POST", "GET"]);
    const contentType = r.pick(["application/json", "text/plain", "application/x+json"]);
    const req = method === "GET"
      ? new Request(url, { method })
      : new Request(url, { method, headers: { "content-type": contentType }, body });
    const res = await handler(req, { remoteAddr: "10.0.0.1" });
    assert([200, 400, 401, 405, 413, 415].includes(res.status), `status ${res.status}`);
    if (res.status === 200) {
      const raw = stored[stored.length - 1].p_raw;
      const bad = jsonbUnsafe(raw);
      assert(bad === null, `${bad} sent to the database: ${raw}`);
    }
  }
});

Deno.test("a token path segment with a broken percent escape is refused with 401, not a crash", async () => {
  assert(urlToken(new URL("http://x/functions/v1/callyzer-webhook/%E0%A4%A")) === "%E0%A4%A", "raw segment kept");
  const handler = callyzer({
    token: "t0k3n-value",
    tokenHeader: "",
    hmacSecret: "",
    hmacHeader: "",
    maxBytes: 1024,
    rpc: fakeRpc([]),
  });
  const res = await handler(
    new Request("http://x/functions/v1/callyzer-webhook/%E0%A4%A", { method: "POST", headers: { "content-type": "application/json" }, body: "[]" }),
    { remoteAddr: "10.0.0.1" },
  );
  assert(res.status === 401, `status ${res.status}`);
});
