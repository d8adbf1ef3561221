// The one way a function talks to the database: a PostgREST RPC call.
// `CALLSYNC_REST_URL` (local stack, tests) or `SUPABASE_URL + /rest/v1` (hosted).

/** What an RPC call returned: the HTTP status and the parsed JSON (or text). */
export type RpcResult = { status: number; body: unknown };

/** Calls `fn` with `args`; `token` is the bearer (service key or the caller's JWT). */
export type Rpc = (fn: string, args: Record<string, unknown>, token?: string) => Promise<RpcResult>;

/** The PostgREST base URL from the environment. */
export function restUrl(): string {
  const explicit = Deno.env.get("CALLSYNC_REST_URL");
  if (explicit) return explicit.replace(/\/$/, "");
  const supabase = Deno.env.get("SUPABASE_URL") ?? "";
  return `${supabase.replace(/\/$/, "")}/rest/v1`;
}

/**
 * An RPC caller. Without a token it uses the service role key; `apikey` is
 * the anon key when one is configured (the hosted gateway wants a project
 * key there), else the bearer itself.
 */
export function rpcFromEnv(): Rpc {
  return async (fn, args, token) => {
    const serviceKey = Deno.env.get("SUPABASE_SERVICE_ROLE_KEY") ?? "";
    const bearer = token ?? serviceKey;
    const apikey = token ? (Deno.env.get("SUPABASE_ANON_KEY") ?? bearer) : serviceKey;
    const res = await fetch(`${restUrl()}/rpc/${fn}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${bearer}`,
        apikey,
      },
      body: JSON.stringify(args),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // keep the text: PostgREST errors are JSON, proxies' are not
    }
    return { status: res.status, body };
  };
}
