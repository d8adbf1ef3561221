// Shared HTTP helpers for the webhook functions: a body reader that stops at a
// byte cap (413 instead of buffering an unbounded upload), a constant-time
// string compare for secrets and signatures, and HMAC-SHA256 with WebCrypto.
// No imports: everything here is in the Deno runtime.

/** The raw body, or why it was not read. */
export type BodyResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: "too_large"; sizeBytes: number };

/**
 * Reads the request body, refusing more than `maxBytes`. A declared
 * Content-Length over the cap is refused before reading; a chunked body is
 * counted as it streams and abandoned as soon as it passes the cap.
 */
export async function readBodyCapped(req: Request, maxBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await req.body?.cancel().catch(() => {});
    return { ok: false, reason: "too_large", sizeBytes: declared };
  }
  if (!req.body) return { ok: true, bytes: new Uint8Array() };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return { ok: false, reason: "too_large", sizeBytes: size };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { ok: true, bytes };
}

/**
 * Compares two strings in time that depends only on their lengths, never on
 * where they first differ (a signature must not leak byte by byte).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  const len = Math.max(x.length, y.length);
  let diff = x.length ^ y.length;
  for (let i = 0; i < len; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** HMAC-SHA256 of `message` under the UTF-8 `key`, as lowercase hex. */
export async function hmacSha256Hex(key: string, message: BufferSource): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, message));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A JSON response. */
export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}

/** What {@link jsonForPostgres} found. */
export type JsonCheck =
  | { ok: true; value: unknown; changed: boolean }
  | { ok: false; reason: "too_deep"; depth: number };

/** Deeper than this is refused: the worker's JSON reader (serde_json) stops at 128. */
export const MAX_JSON_DEPTH = 64;

/**
 * Makes a parsed payload safe to store as jsonb and to read back in the worker.
 * JSON.parse accepts values that Postgres jsonb refuses (strings or keys with
 * NUL, `\u0000`, or an unpaired surrogate such as `\ud800`) and values the
 * worker cannot read back (numbers beyond a double, 1e400, which JSON.parse
 * turns into Infinity; nesting deeper than serde_json's limit). Without this a
 * delivery with one such value got 503 forever (the sender retries, nothing is
 * ever stored) or was stored and never processed. Too deep is refused; the
 * other values are replaced (U+FFFD for the bad characters, null for the
 * number) so the rest of the payload is kept, and `changed` says so.
 */
export function jsonForPostgres(payload: unknown, maxDepth = MAX_JSON_DEPTH): JsonCheck {
  // iterative depth check first: the sanitiser below recurses, so bound it
  const stack: [unknown, number][] = [[payload, 1]];
  let changed = false;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "string") {
      if (badString(v)) changed = true;
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) changed = true;
    } else if (v !== null && typeof v === "object") {
      if (depth > maxDepth) return { ok: false, reason: "too_deep", depth };
      if (Array.isArray(v)) {
        for (const x of v) stack.push([x, depth + 1]);
      } else {
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          if (badString(k)) changed = true;
          stack.push([x, depth + 1]);
        }
      }
    }
  }
  return { ok: true, value: changed ? sanitise(payload) : payload, changed };
}

function badString(s: string): boolean {
  return s.includes("\u0000") || !s.isWellFormed();
}

function fixString(s: string): string {
  return s.toWellFormed().replaceAll("\u0000", "\uFFFD");
}

function sanitise(v: unknown): unknown {
  if (typeof v === "string") return fixString(v);
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (Array.isArray(v)) return v.map(sanitise);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[fixString(k)] = sanitise(x);
    return out;
  }
  return v;
}
