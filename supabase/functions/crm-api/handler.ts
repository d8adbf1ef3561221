// crm-api: the operators' HTTP API of the ElevenLabs → BPMsoft pipeline.
//   POST /crm-api/analyze                         body: an event → public.elevenlabs_analyze
//   POST /crm-api/events/{id}/resend-crm[?force=true]          → public.elevenlabs_resend_crm
// The caller's own JWT goes to PostgREST, so the database decides: the RPCs
// refuse anyone but an admin (callsync.is_admin()). This function holds no
// privilege of its own and no business logic; both answers are 202 because
// the work is queued, not done.
import { json, readBodyCapped } from "../_shared/http.ts";
import { type Rpc, rpcFromEnv } from "../_shared/rpc.ts";

/** What the handler needs from the outside world (tests inject fakes). */
export type Deps = { rpc: Rpc; maxBytes: number };

const DEFAULT_MAX_BYTES = 2 * 1024 * 1024;

/** PostgREST's answer → ours: its 4xx mean what they say; anything else is our problem. */
function relay(status: number, body: unknown): Response {
  if (status === 200) return json(body, 202);
  const message = (body as { message?: unknown })?.message ?? body;
  if ([400, 401, 403, 404].includes(status)) return json({ error: message }, status);
  console.error(`crm-api: RPC failed ${status}: ${JSON.stringify(body)}`);
  return json({ error: "unavailable" }, 502);
}

/** Builds the handler around `deps`. */
export function makeHandler(deps: Deps) {
  return async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname.replace(/^.*?\/crm-api(?=\/|$)/, "");
    const auth = req.headers.get("authorization") ?? "";
    const token = auth.match(/^Bearer\s+(\S+)$/i)?.[1];

    const analyze = path === "/analyze";
    const resend = path.match(/^\/events\/(\d{1,18})\/resend-crm\/?$/);
    if (!analyze && !resend) return json({ error: "not found" }, 404);
    if (req.method !== "POST") return json({ error: "method not allowed" }, 405);
    if (!token) return json({ error: "a bearer token is required" }, 401);

    try {
      if (analyze) {
        const body = await readBodyCapped(req, deps.maxBytes);
        if (!body.ok) return json({ error: "body too large" }, 413);
        let event: unknown;
        try {
          event = JSON.parse(new TextDecoder().decode(body.bytes));
        } catch {
          return json({ error: "body is not JSON" }, 400);
        }
        if (typeof event !== "object" || event === null || Array.isArray(event)) {
          return json({ error: "the event must be a JSON object" }, 400);
        }
        const r = await deps.rpc("elevenlabs_analyze", { p_event: event }, token);
        return relay(r.status, r.body);
      }
      const force = ["true", "1", "yes"].includes(new URL(req.url).searchParams.get("force") ?? "");
      const r = await deps.rpc("elevenlabs_resend_crm", { p_event_id: Number(resend![1]), p_force: force }, token);
      return relay(r.status, r.body);
    } catch (e) {
      console.error(`crm-api: database unreachable: ${e}`);
      return json({ error: "unavailable" }, 503);
    }
  };
}

/** The deployed handler. */
export function handle(req: Request): Promise<Response> {
  return makeHandler({
    rpc: rpcFromEnv(),
    maxBytes: Number(Deno.env.get("CRM_API_MAX_BYTES") ?? DEFAULT_MAX_BYTES),
  })(req);
}
