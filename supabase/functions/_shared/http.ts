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
