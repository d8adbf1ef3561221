// Local stand-in for Supabase's edge runtime: serves every function folder at
// /functions/v1/<name>, as hosted Supabase does. Each function keeps its logic
// in handler.ts (export `handle(req, info)`) and its index.ts only calls
// Deno.serve, so this router and `deno test` can import the same handler.
// `_`-prefixed folders (this one, _shared) are not functions and not deployed.

type Handle = (req: Request, info: { remoteAddr: string }) => Response | Promise<Response>;

const functionsDir = new URL("../", import.meta.url);
const loaded = new Map<string, Handle>();

async function handlerFor(name: string): Promise<Handle | undefined> {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) return undefined;
  const cached = loaded.get(name);
  if (cached) return cached;
  try {
    await Deno.stat(new URL(`${name}/handler.ts`, functionsDir));
  } catch {
    return undefined;
  }
  const mod = await import(new URL(`${name}/handler.ts`, functionsDir).href);
  loaded.set(name, mod.handle as Handle);
  return mod.handle as Handle;
}

const port = Number(Deno.env.get("PORT") ?? "54321");

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req, info) => {
  const url = new URL(req.url);
  const match = url.pathname.match(/^\/functions\/v1\/([^/]+)/);
  if (url.pathname === "/functions/v1" || url.pathname === "/functions/v1/") {
    return Response.json({ status: "ok" });
  }
  if (!match) return Response.json({ error: "not found" }, { status: 404 });
  const handle = await handlerFor(match[1]);
  if (!handle) return Response.json({ error: `no function ${match[1]}` }, { status: 404 });
  const remote = info.remoteAddr as Deno.NetAddr;
  return await handle(req, { remoteAddr: remote.hostname });
});
console.log(`functions listening on http://127.0.0.1:${port}/functions/v1`);
