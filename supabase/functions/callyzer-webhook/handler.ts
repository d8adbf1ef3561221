// callyzer-webhook: receives Callyzer's call-log webhook (a JSON array of
// employees, each with `call_logs`). Callyzer documents no signature, so the
// request is authenticated by a shared token: in the URL (`?token=` or the last
// path segment, /functions/v1/callyzer-webhook/<token>) or in a configured
// header; where an HMAC-SHA256 signature header is configured, a valid
// signature over the raw body is accepted too. Secrets are compared in constant
// time. The body is capped (1 MiB by default), must be JSON of the expected
// outer shape, and is stored raw with one RPC (public.ingest_callyzer_webhook)
// that also enqueues its processing; 200 is answered only after that commit.
// Every refusal is logged through public.log_webhook_rejection with a reason,
// never with the secret. Parsing the calls is the worker's business.
import { concatBytes, hmacSha256Hex, json, jsonForPostgres, readBodyCapped, timingSafeEqual } from "../_shared/http.ts";
import { type Rpc, rpcFromEnv } from "../_shared/rpc.ts";

/** What the handler needs from the outside world (tests inject fakes). */
export type Deps = {
  /** The shared token (URL or header). Empty: token authentication is off. */
  token: string;
  /** During a rotation, the token being retired: accepted too until it is unset. */
  previousToken?: string;
  /** Header that may carry the token (lower case). Empty: URL only. */
  tokenHeader: string;
  /** HMAC-SHA256 key for the signature header. Empty: signatures not accepted. */
  hmacSecret: string;
  /** During a rotation, the HMAC key being retired: accepted too until it is unset. */
  previousHmacSecret?: string;
  /** Header that carries the hex signature (optionally `sha256=` prefixed). */
  hmacHeader: string;
  maxBytes: number;
  rpc: Rpc;
};

const SOURCE = "callyzer";
export const DEFAULT_MAX_BYTES = 1024 * 1024;
const FUNCTION_NAME = "callyzer-webhook";

/** The token given in the URL: `?token=` first, else the path segment after the function name. */
export function urlToken(url: URL): string | null {
  const q = url.searchParams.get("token");
  if (q) return q;
  const parts = url.pathname.split("/").filter((p) => p.length > 0);
  const at = parts.lastIndexOf(FUNCTION_NAME);
  if (at >= 0 && at < parts.length - 1) return decodeSegment(parts[parts.length - 1]);
  return null;
}

/** A broken escape (`%E0%A4%A`) is kept as sent: it cannot match, and must not throw (500). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `application/json`, `application/<x>+json`, with or without parameters. */
export function isJsonContentType(value: string | null): boolean {
  if (!value) return false;
  const mime = value.split(";")[0].trim().toLowerCase();
  return mime === "application/json" || /^application\/[a-z0-9.\-]+\+json$/.test(mime);
}

/**
 * The outer shape the worker can work with: an array of employee objects, or
 * (defensively) an object with such an array in `result`. Deeper problems are
 * the worker's to report per record, without losing the valid ones.
 */
export function hasDeliveryShape(payload: unknown): boolean {
  const employees = Array.isArray(payload)
    ? payload
    : (payload && typeof payload === "object" && Array.isArray((payload as Record<string, unknown>).result))
    ? (payload as Record<string, unknown>).result as unknown[]
    : null;
  return employees !== null &&
    employees.every((e) => e !== null && typeof e === "object" && !Array.isArray(e));
}

/** Builds the handler around `deps`. */
export function makeHandler(deps: Deps) {
  return async (req: Request, info: { remoteAddr: unknown }): Promise<Response> => {
    const addr = clientAddr(req, info);
    const refuse = async (status: number, reason: string, detail: string, size?: number) => {
      try {
        const logged = await deps.rpc("log_webhook_rejection", {
          p_source: SOURCE,
          p_reason: reason,
          p_status_code: status,
          p_client_addr: addr,
          p_size_bytes: size ?? null,
          p_detail: detail,
        });
        if (logged.status >= 300) console.error(`callyzer-webhook: rejection log answered ${logged.status}`);
      } catch (e) {
        console.error(`callyzer-webhook: could not log rejection ${reason}: ${e}`);
      }
      console.warn(`callyzer-webhook: refused ${status} ${reason}: ${detail}`);
      return json({ error: reason }, status);
    };

    if (req.method !== "POST") {
      return await refuse(405, "method_not_allowed", `method ${req.method}`);
    }
    if (!deps.token && !deps.hmacSecret) {
      return await refuse(500, "not_configured", "CALLYZER_WEBHOOK_TOKEN is not set");
    }

    // Token first: it needs no body, so a stranger's upload is never read.
    const url = new URL(req.url);
    const given = [urlToken(url), deps.tokenHeader ? req.headers.get(deps.tokenHeader) : null]
      .filter((t): t is string => t !== null && t !== "");
    let authenticated = false;
    const tokens = [deps.token, deps.previousToken ?? ""].filter((t) => t !== "");
    // compare every candidate with every accepted token, without stopping at the first match
    for (const t of given) for (const k of tokens) authenticated = timingSafeEqual(t, k) || authenticated;
    const signature = deps.hmacSecret && deps.hmacHeader ? req.headers.get(deps.hmacHeader) : null;
    if (!authenticated && !signature) {
      return given.length === 0
        ? await refuse(401, "missing_secret", "no token in the URL or header, no signature")
        : await refuse(401, "bad_secret", "the token does not match");
    }

    if (!isJsonContentType(req.headers.get("content-type"))) {
      return await refuse(415, "not_json_content_type", `content type ${JSON.stringify(req.headers.get("content-type") ?? "")}`.slice(0, 200));
    }
    const body = await readBodyCapped(req, deps.maxBytes);
    if (!body.ok) {
      return await refuse(413, "too_large", `body over ${deps.maxBytes} bytes`, body.sizeBytes);
    }
    const size = body.bytes.byteLength;

    if (signature) {
      // a signature that is present must be right, even next to a valid token
      const hex = signature.trim().toLowerCase().replace(/^sha256=/, "");
      let valid = false;
      for (const key of [deps.hmacSecret, deps.previousHmacSecret ?? ""].filter((k) => k !== "")) {
        valid = timingSafeEqual(hex, await hmacSha256Hex(key, concatBytes(body.bytes))) || valid;
      }
      if (!valid) {
        return await refuse(401, "bad_signature", "the HMAC-SHA256 signature does not match", size);
      }
      authenticated = true;
    }
    if (!authenticated) return await refuse(401, "bad_secret", "the token does not match", size);

    let raw: string;
    let payload: unknown;
    try {
      raw = new TextDecoder("utf-8", { fatal: true }).decode(body.bytes);
      payload = JSON.parse(raw);
    } catch {
      return await refuse(400, "bad_json", "body is not UTF-8 JSON", size);
    }
    if (!hasDeliveryShape(payload)) {
      return await refuse(400, "bad_shape", "expected an array of employee objects with call_logs", size);
    }
    const safe = jsonForPostgres(payload);
    if (!safe.ok) {
      return await refuse(400, "too_deep", `JSON nested deeper than ${safe.depth - 1} levels`, size);
    }
    if (safe.changed) {
      // NUL, unpaired surrogates or out-of-range numbers replaced: jsonb refuses them
      raw = JSON.stringify(safe.value);
      console.warn("callyzer-webhook: body normalised (values Postgres cannot store were replaced)");
    }

    let stored;
    try {
      stored = await deps.rpc("ingest_callyzer_webhook", {
        p_raw: raw,
        p_header_names: [...req.headers.keys()].sort(),
        p_client_addr: addr,
      });
    } catch (e) {
      console.error(`callyzer-webhook: database unreachable: ${e}`);
      return json({ error: "unavailable" }, 503);
    }
    if (stored.status !== 200) {
      // nothing was committed; a 5xx lets Callyzer retry, reconciliation repairs the rest
      console.error(`callyzer-webhook: store failed ${stored.status}: ${JSON.stringify(stored.body).slice(0, 500)}`);
      return json({ error: "unavailable" }, 503);
    }
    const result = (stored.body ?? {}) as Record<string, unknown>;
    return json({ received: true, event_id: result.event_id ?? null, duplicate: result.duplicate ?? false });
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

/** The cap from the environment; anything but a positive whole number means the default. */
export function maxBytesFrom(value: string | undefined): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : DEFAULT_MAX_BYTES;
}

/** The deployed handler: secrets and limits from the environment. */
export function handle(req: Request, info: { remoteAddr: unknown }): Promise<Response> {
  return makeHandler({
    token: Deno.env.get("CALLYZER_WEBHOOK_TOKEN") ?? "",
    previousToken: Deno.env.get("CALLYZER_WEBHOOK_TOKEN_PREVIOUS") ?? "",
    tokenHeader: (Deno.env.get("CALLYZER_WEBHOOK_HEADER") ?? "").toLowerCase(),
    hmacSecret: Deno.env.get("CALLYZER_WEBHOOK_HMAC_SECRET") ?? "",
    previousHmacSecret: Deno.env.get("CALLYZER_WEBHOOK_HMAC_SECRET_PREVIOUS") ?? "",
    hmacHeader: (Deno.env.get("CALLYZER_WEBHOOK_HMAC_HEADER") ?? "x-callyzer-signature").toLowerCase(),
    maxBytes: maxBytesFrom(Deno.env.get("CALLYZER_WEBHOOK_MAX_BYTES")),
    rpc: rpcFromEnv(),
  })(req, info);
}
