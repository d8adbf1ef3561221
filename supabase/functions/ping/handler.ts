// ping: answers 200 with the function runtime's view of the time. Lets an
// operator (and the stack's smoke test) check that Edge Functions are served.
export function handle(req: Request): Response {
  if (req.method !== "GET") return Response.json({ error: "method not allowed" }, { status: 405 });
  return Response.json({ ok: true, now: new Date().toISOString() });
}
