// elevenlabs-webhook: receives ElevenLabs post-call webhooks. Verifies the
// `ElevenLabs-Signature: t=<unix>,v0=<hex>` header (HMAC-SHA256 over
// "<t>.<raw body>") on the raw bytes before parsing, refuses stale (> 30 min)
// and future (> 5 min) timestamps, caps the body, and stores the event with one
// RPC (public.receive_elevenlabs_webhook) that also queues its analysis.
// Answers 200 only after that RPC committed. Every refusal is logged through
// public.log_webhook_rejection with a reason, never with the secret.
// Business logic lives in the worker; this only authenticates and stores.
import { concatBytes, hmacSha256Hex, json, jsonForPostgres, readBodyCapped, timingSafeEqual } from "../_shared/http.ts";
import { type Rpc, rpcFromEnv } from "../_shared/rpc.ts";

/** What the handler needs from the outside world (tests inject fakes). */
export type Deps = {
  /** Current secret first; the previous one during a rotation. Empty: not configured. */
  secrets: string[];
  rpc: Rpc;
  /** Current time in UNIX seconds. */
  now: () => number;
  maxBytes: number;
};

const SOURCE = "elevenlabs";
const TOLERANCE_SECS = 30 * 60; // ElevenLabs' own SDKs refuse older signatures
const FUTURE_SECS = 5 * 60; // clock skew we forgive; more is a forged or replayed header
const DEFAULT_MAX_BYTES = 5 * 1024 * 1024; // transcripts can be long; audio events are not wanted here

/** Parses `t=…,v0=…[,v0=…]`. Null when there is no usable t or no v0. */
export function parseSignatureHeader(header: string): { t: number; v0: string[] } | null {
  let t: number | null = null;
  const v0: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^\d{1,12}$/.test(value)) t = Number(value);
    if (key === "v0" && value) v0.push(value.toLowerCase());
  }
  return t === null || v0.length === 0 ? null : { t, v0 };
}

/** Builds the handler around `deps`. */
export function makeHandler(deps: Deps) {
  return async (req: Request, info: { remoteAddr: unknown }): Promise<Response> => {
    const addr = clientAddr(req, info);
    const refuse = async (status: number, reason: string, detail: string, size?: number) => {
      try {
        await deps.rpc("log_webhook_rejection", {
          p_source: SOURCE,
          p_reason: reason,
          p_status_code: status,
          p_client_addr: addr,
          p_size_bytes: size ?? null,
          p_detail: detail,
        });
      } catch (e) {
        console.error(`elevenlabs-webhook: could not log rejection ${reason}: ${e}`);
      }
      console.warn(`elevenlabs-webhook: refused ${status} ${reason}: ${detail}`);
      return json({ error: reason }, status);
    };

    if (req.method !== "POST") {
      return await refuse(405, "method_not_allowed", `method ${req.method}`);
    }
    const body = await readBodyCapped(req, deps.maxBytes);
    if (!body.ok) {
      return await refuse(413, "too_large", `body over ${deps.maxBytes} bytes`, body.sizeBytes);
    }
    const size = body.bytes.byteLength;
    const secrets = deps.secrets.filter((s) => s.length > 0);
    if (secrets.length === 0) {
      return await refuse(500, "not_configured", "ELEVENLABS_WEBHOOK_SECRET is not set", size);
    }
    const header = req.headers.get("elevenlabs-signature");
    if (!header) return await refuse(401, "missing_signature", "no ElevenLabs-Signature header", size);
    const sig = parseSignatureHeader(header);
    if (!sig) return await refuse(401, "bad_signature_header", "header lacks t= or v0=", size);

    const now = deps.now();
    if (sig.t < now - TOLERANCE_SECS) {
      return await refuse(401, "stale_timestamp", `t is ${now - sig.t}s old`, size);
    }
    if (sig.t > now + FUTURE_SECS) {
      return await refuse(401, "future_timestamp", `t is ${sig.t - now}s ahead`, size);
    }

    const signed = concatBytes(new TextEncoder().encode(`${sig.t}.`), body.bytes);
    let valid = false;
    for (const secret of secrets) {
      const expected = await hmacSha256Hex(secret, signed);
      // compare against every v0 without stopping early
      for (const given of sig.v0) valid = timingSafeEqual(expected, given) || valid;
    }
    if (!valid) return await refuse(401, "bad_signature", "no v0 matches", size);

    let event: unknown;
    try {
      event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body.bytes));
    } catch {
      return await refuse(400, "not_json", "body is not UTF-8 JSON", size);
    }
    if (typeof event !== "object" || event === null || Array.isArray(event) ||
      typeof (event as Record<string, unknown>).type !== "string") {
      return await refuse(400, "bad_payload", "not an object with a type", size);
    }
    const safe = jsonForPostgres(event);
    if (!safe.ok) {
      return await refuse(400, "too_deep", `JSON nested deeper than ${safe.depth - 1} levels`, size);
    }
    if (safe.changed) {
      // NUL, unpaired surrogates or out-of-range numbers replaced: jsonb refuses them
      event = safe.value;
      console.warn("elevenlabs-webhook: body normalised (values Postgres cannot store were replaced)");
    }

    const headerNames = [...req.headers.keys()].sort();
    let stored;
    try {
      stored = await deps.rpc("receive_elevenlabs_webhook", {
        p_body: event,
        p_size_bytes: size,
        p_header_names: headerNames,
        p_client_addr: addr,
      });
    } catch (e) {
      console.error(`elevenlabs-webhook: database unreachable: ${e}`);
      return json({ error: "unavailable" }, 503);
    }
    if (stored.status !== 200) {
      // a 5xx makes ElevenLabs retry (when retries are on); nothing was committed
      console.error(`elevenlabs-webhook: store failed ${stored.status}: ${JSON.stringify(stored.body)}`);
      return json({ error: "unavailable" }, 503);
    }
    const result = stored.body as Record<string, unknown>;
    return json({ received: true, event_id: result?.event_id ?? null, duplicate: result?.duplicate ?? false });
  };
}

/** For the logs only: the gateway's forwarded address, else the socket's. */
function clientAddr(req: Request, info: { remoteAddr: unknown }): string | null {
  const forwarded = req.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  if (forwarded) return forwarded;
  const r = info.remoteAddr;
  if (typeof r === "string") return r;
  if (r && typeof r === "object" && "hostname" in r) return String((r as { hostname: unknown }).hostname);
  return null;
}

function secretsFromEnv(): string[] {
  return [Deno.env.get("ELEVENLABS_WEBHOOK_SECRET"), Deno.env.get("ELEVENLABS_WEBHOOK_SECRET_PREVIOUS")]
    .filter((s): s is string => !!s);
}

/** The deployed handler: secrets and limits from the environment. */
export function handle(req: Request, info: { remoteAddr: unknown }): Promise<Response> {
  return makeHandler({
    secrets: secretsFromEnv(),
    rpc: rpcFromEnv(),
    now: () => Math.floor(Date.now() / 1000),
    maxBytes: Number(Deno.env.get("ELEVENLABS_WEBHOOK_MAX_BYTES") ?? DEFAULT_MAX_BYTES),
  })(req, info);
}
