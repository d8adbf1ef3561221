// callsync operator console: plain JavaScript, no build step, no CDN.
// Reads only through PostgREST with the signed-in user's JWT, so row-level
// security decides what each role sees; the console only hides screens a role
// cannot use. Configuration comes from ./config.json:
//   { "restUrl": "https://<project>.supabase.co/rest/v1",
//     "authUrl": "https://<project>.supabase.co/auth/v1", "anonKey": "…" }
// Sign-in is Supabase Auth's REST API, called with plain fetch: e-mail and
// password for a session (access token, refresh token, expiry), refreshed
// before it lapses, ended on sign-out. The local demo (callsync simulate
// --local-login) answers the same calls for the seed's demo users, so there
// is one code path; its config.json also lists them ("localLogin": true).

const TZ = "Europe/Warsaw";
const TYPES = [
  ["Incoming", "Przychodzące", "var(--in)", "incoming"],
  ["Outgoing", "Wychodzące", "var(--out)", "outgoing"],
  ["Missed", "Nieodebrane", "var(--missed)", "missed"],
  ["Rejected", "Odrzucone", "var(--rejected)", "rejected"],
  ["Other", "Inne", "var(--other)", "other"],
];
const JOB_STATES = ["available", "running", "retryable", "completed", "discarded", "cancelled"];
const JOB_STATE_PL = {
  available: "oczekuje", running: "w trakcie", retryable: "ponawiane",
  completed: "zakończone", discarded: "odrzucone", cancelled: "anulowane",
};
const ROLE_PL = { admin: "administrator", manager: "kierownik", advisor: "doradca" };
const PAGE = 50;

const state = { config: null, authBase: null, session: null, refreshing: null, me: null, timer: null, route: "", gen: 0 };
const SESSION_KEY = "callsync.session";
// Refresh this long before the access token expires, as Supabase's own client
// does, so no request leaves with a token that lapses on the way.
const REFRESH_MARGIN_S = 60;
const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------- helpers
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function dt(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString("pl-PL", { timeZone: TZ, dateStyle: "short", timeStyle: "medium" });
}
function dur(s) {
  if (s == null) return "—";
  s = Math.round(Number(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
}
function num(n) { return n == null ? "—" : Number(n).toLocaleString("pl-PL"); }
function pct(x) { return x == null ? "—" : `${(Number(x) * 100).toFixed(1)}%`; }
function chip(type, label) { return `<span class="chip ${esc(type)}">${esc(label || type)}</span>`; }
function st(s, label) { return `<span class="st ${esc(s)}">${esc(label || s)}</span>`; }
function setStatus(text) { $("#status").textContent = text; }
function localDate(d) { return d.toLocaleDateString("sv-SE", { timeZone: TZ }); } // YYYY-MM-DD
function dayStart(ymd) {
  // midnight in Warsaw as an instant (offset from the zone's own formatting)
  const probe = new Date(`${ymd}T12:00:00Z`);
  const off = probe.toLocaleString("en-US", { timeZone: TZ, timeZoneName: "shortOffset" }).match(/GMT([+-]\d+)?/);
  const hours = off && off[1] ? Number(off[1]) : 0;
  return new Date(Date.parse(`${ymd}T00:00:00Z`) - hours * 3600_000);
}

// ---------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, body) { super(body?.message || `HTTP ${status}`); this.status = status; this.body = body; }
}
async function api(path, opts = {}, retried = false) {
  const { method = "GET", body, count = false } = opts;
  const token = await accessToken();
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  if (state.config.anonKey) headers.apikey = state.config.anonKey;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (count) headers.Prefer = "count=exact";
  const res = await fetch(`${state.config.restUrl.replace(/\/$/, "")}/${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (res.status === 401) {
    // PostgREST does not take this token (it lapsed while the computer slept,
    // or the project's JWT secret was rotated): refresh once and retry; a
    // refused refresh ends the session
    if (!retried && state.session && (state.session.access_token !== token || await refreshSession())) {
      return api(path, opts, true);
    }
    if (state.session) sessionExpired();
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  let total = null;
  const range = res.headers.get("content-range");
  if (range && range.includes("/")) { const t = range.split("/")[1]; total = t === "*" ? null : Number(t); }
  return { data, total };
}
// A view another issue adds may be missing in this database: say so instead of failing.
async function optional(path, opts) {
  try { return await api(path, opts); } catch (e) {
    if (e.status === 404 || e.body?.code === "42P01" || e.body?.code === "PGRST205" || e.body?.code === "PGRST202") return null;
    throw e;
  }
}

// ---------------------------------------------------------------- sign-in (Supabase Auth)
async function boot() {
  try {
    state.config = await (await fetch("config.json", { cache: "no-store" })).json();
  } catch {
    $("#main").innerHTML = `<div class="notice">Brak pliku <code>config.json</code> obok konsoli (restUrl, authUrl, anonKey).</div>`;
    return;
  }
  if (!state.config.authUrl) {
    $("#main").innerHTML = `<div class="notice">W <code>config.json</code> brakuje <code>authUrl</code> (adres Supabase Auth, np. <code>https://&lt;projekt&gt;.supabase.co/auth/v1</code>).</div>`;
    return;
  }
  // relative (the local demo: "auth/v1") or absolute; always ends with "/" so paths append
  state.authBase = new URL(String(state.config.authUrl).replace(/\/?$/, "/"), location.href);
  state.session = readSession();
  window.addEventListener("hashchange", () => render());
  // a failed loadMe has already put the form up, with the reason
  if (!state.session) showLogin(); else if (await loadMe()) render();
}

function readSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return s && s.access_token && s.refresh_token ? s : null;
  } catch { return null; }
}
function saveSession(answer) {
  state.session = answer ? {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: Number(answer.expires_at) || Math.floor(Date.now() / 1000) + Number(answer.expires_in || 0),
  } : null;
  // per tab: closing the tab ends the sign-in
  if (state.session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  else sessionStorage.removeItem(SESSION_KEY);
}

// One call to Supabase Auth; answers { status, data } and throws only when
// the service cannot be reached.
async function auth(path, body, bearer) {
  const headers = { Accept: "application/json" };
  if (state.config.anonKey) headers.apikey = state.config.anonKey;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(new URL(path, state.authBase), {
    method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { status: res.status, data };
}

// Supabase Auth's refusals in Polish; both error shapes (error_code, or the
// older error/error_description) are understood.
function authMessage(status, data) {
  const code = data?.error_code || (typeof data?.code === "string" ? data.code : null) || data?.error;
  if (code === "invalid_credentials" || code === "invalid_grant") return "Nieprawidłowy adres e-mail lub hasło.";
  if (code === "email_not_confirmed") return "Adres e-mail nie został jeszcze potwierdzony.";
  if (code === "user_banned") return "To konto jest zablokowane.";
  if (code === "validation_failed") return "Podaj adres e-mail i hasło.";
  if (status === 429 || code === "over_request_rate_limit") return "Zbyt wiele prób logowania — spróbuj ponownie za chwilę.";
  if (status === 401) return "Usługa logowania nie przyjęła klucza API (anonKey w config.json).";
  return `Logowanie nie powiodło się (HTTP ${status}).`;
}

// Returns a Polish message when the sign-in failed, null when it worked.
async function signInWithPassword(email, password) {
  let r;
  try { r = await auth("token?grant_type=password", { email, password }); } catch {
    return "Nie można połączyć się z usługą logowania. Spróbuj ponownie.";
  }
  if (r.status !== 200 || !r.data?.access_token) return authMessage(r.status, r.data);
  saveSession(r.data);
  if (await loadMe()) { location.hash = "#/pulpit"; render(); }
  return null;
}

// One refresh at a time: the screens ask in parallel, and a refresh token
// works only once. Resolves true with a new session, false when the session is
// over; throws when Auth cannot be reached (the next refresh tries again).
function refreshSession() {
  if (!state.refreshing) {
    const token = state.session?.refresh_token;
    state.refreshing = (async () => {
      if (!token) return false;
      const r = await auth("token?grant_type=refresh_token", { refresh_token: token });
      if (r.status !== 200 || !r.data?.access_token) return false;
      if (state.session?.refresh_token !== token) return false;  // signed out meanwhile
      saveSession(r.data);
      return true;
    })().finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

async function accessToken() {
  if (!state.session) throw new ApiError(401, { message: "Nie zalogowano." });
  if (Number(state.session.expires_at) - REFRESH_MARGIN_S < Date.now() / 1000 && !(await refreshSession())) {
    sessionExpired();
    throw new ApiError(401, { message: "Sesja wygasła." });
  }
  return state.session.access_token;
}

async function loadMe() {
  try {
    const { data } = await api("console_me?select=*");
    if (!data || !data.length) { await signOut("Ten użytkownik nie ma roli w callsync (brak wpisu w app_user).", true); return false; }
    state.me = data[0];
    return true;
  } catch (e) {
    if (e.status !== 401) await signOut(`Nie udało się odczytać profilu: ${e.message}`, true);
    return false;
  }
}

function showLogin(message) {
  clearInterval(state.timer);
  state.route = "";
  $("#nav").innerHTML = "";
  $("#who").innerHTML = "";
  const local = state.config.localLogin;
  const users = state.config.demoUsers || [];
  $("#main").innerHTML = `
    <h1>Logowanie</h1>
    ${message ? `<div class="notice" data-testid="login-notice">${esc(message)}</div>` : ""}
    <form id="login" class="card login" novalidate>
      <label>Adres e-mail<input type="email" id="login-email" autocomplete="username" data-testid="login-email"></label>
      <label>Hasło<input type="password" id="login-password" autocomplete="current-password" data-testid="login-password"></label>
      <div class="notice err" id="login-error" data-testid="login-error" role="alert" hidden></div>
      <button type="submit" class="primary" data-testid="login-submit">Zaloguj</button>
    </form>
    ${local ? `<div class="card login">
      <p class="muted">Lokalne demo (symulator, nigdy na produkcji): konta z danych demonstracyjnych, hasło <code>${esc(state.config.demoPassword || "")}</code>. Kliknij konto, aby je wpisać.</p>
      <div class="users">${users.map((u) => `
        <button type="button" data-email="${esc(u.email)}" data-testid="demo-${esc(u.role)}">${esc(u.label)}<small>${esc(u.email)} · ${esc(ROLE_PL[u.role] || u.role)}</small></button>`).join("")}
      </div></div>` : ""}`;
  const form = $("#login"), email = $("#login-email"), password = $("#login-password"), err = $("#login-error");
  for (const b of document.querySelectorAll(".users button")) {
    b.onclick = () => { email.value = b.dataset.email; password.value = state.config.demoPassword || ""; form.querySelector("button[type=submit]").focus(); };
  }
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    err.hidden = true;
    if (!email.value.trim() || !password.value) { err.textContent = "Podaj adres e-mail i hasło."; err.hidden = false; return; }
    submit.disabled = true;
    submit.textContent = "Logowanie…";
    const failed = await signInWithPassword(email.value.trim(), password.value);
    if (failed && document.body.contains(form)) {
      submit.disabled = false;
      submit.textContent = "Zaloguj";
      password.value = "";
      err.textContent = failed;
      err.hidden = false;
      password.focus();
    }
  };
  (email.value ? password : email).focus();
}

// Ends the session: with `remote`, Supabase Auth revokes its refresh tokens
// (this session only: scope=local; other devices stay signed in).
async function signOut(message, remote = false) {
  const session = state.session;
  saveSession(null);
  state.me = null;
  if (remote && session) {
    try { await auth("logout?scope=local", undefined, session.access_token); } catch { /* ended here anyway */ }
  }
  showLogin(message);
}

function sessionExpired() {
  saveSession(null);
  state.me = null;
  showLogin("Sesja wygasła — zaloguj się ponownie.");
}

// ---------------------------------------------------------------- routing
const SCREENS = [
  { id: "pulpit", label: "Pulpit", roles: ["admin", "manager", "advisor"], view: dashboard },
  { id: "leady", label: "Leady", roles: ["admin", "manager", "advisor"], view: leads },
  { id: "statystyki", label: "Statystyki zespołu", roles: ["admin", "manager", "advisor"], view: stats },
  { id: "nieprzypisane", label: "Nieprzypisane", roles: ["admin", "manager", "advisor"], view: unmatched },
  { id: "kolejka", label: "Kolejka", roles: ["admin"], view: queue },
  { id: "uzgodnienia", label: "Uzgodnienia", roles: ["admin"], view: reconciliation },
  { id: "alerty", label: "Alerty i raporty", roles: ["admin"], view: alerts },
  { id: "crm", label: "CRM", roles: ["admin"], view: crm },
];

function render() {
  if (!state.me) return showLogin();
  const [id, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const visible = SCREENS.filter((s) => s.roles.includes(state.me.role));
  const screen = visible.find((s) => s.id === id) || visible[0];
  $("#nav").innerHTML = visible.map((s) =>
    `<a href="#/${s.id}" data-testid="nav-${s.id}" class="${s === screen ? "active" : ""}">${esc(s.label)}</a>`).join("");
  const me = state.me;
  $("#who").innerHTML = `<span data-testid="who">${esc(ROLE_PL[me.role] || me.role)}${me.team_name ? ` · ${esc(me.team_name)}` : ""}${me.advisor_name ? ` · ${esc(me.advisor_name)}` : ""}</span><button id="logout">Wyloguj</button>`;
  $("#logout").onclick = () => signOut(undefined, true);
  const route = `${screen.id}/${arg || ""}`;
  const fresh = route !== state.route;
  state.route = route;
  clearInterval(state.timer);
  // One generation per navigation: a slow refresh of the previous screen never
  // blocks the new one, and its late answer touches nothing.
  const gen = (state.gen = (state.gen || 0) + 1);
  let inFlight = false;
  const run = async (first) => {
    if (inFlight) return;
    inFlight = true;
    const t0 = performance.now();
    try {
      await screen.view(arg, first);
      if (gen === state.gen) setStatus(`Odświeżono ${new Date().toLocaleTimeString("pl-PL", { timeZone: TZ })} · ${Math.round(performance.now() - t0)} ms`);
    } catch (e) {
      if (e.status !== 401 && gen === state.gen) $("#main").insertAdjacentHTML("afterbegin", `<div class="notice err">Błąd: ${esc(e.message)}</div>`);
    } finally { inFlight = false; }
  };
  run(fresh);
  // screens refresh themselves; forms keep their values (they live outside #main's tables)
  state.timer = setInterval(() => { if (!document.hidden) run(false); }, 5000);
}

function frame(first, html) {
  // the first render of a screen builds it; refreshes only replace data parts
  if (first || !$("#main [data-screen]")) $("#main").innerHTML = html;
}
function fill(sel, html) { const el = $(sel); if (el) el.innerHTML = html; }

// ---------------------------------------------------------------- Pulpit
async function dashboard(_arg, first) {
  frame(first, `<div data-screen="pulpit"><h1>Pulpit</h1>
    <div class="grid" id="kpis"></div>
    <h2>Ostatnie rozmowy z leadami</h2><div id="recent" class="card"></div>
    <h2>Ostatnie nieprzypisane rozmowy</h2><div id="recent-unmatched" class="card"></div></div>`);
  const today = localDate(new Date());
  const [statsRes, recent, unm] = await Promise.all([
    api("rpc/team_call_stats", { method: "POST", body: { p_from: dayStart(today).toISOString(), p_to: new Date(Date.now() + 60_000).toISOString() } }),
    api("lead_call_registry?select=*&order=called_at.desc&limit=10"),
    api("unmatched_calls?select=*&order=called_at.desc&limit=10", { count: true }),
  ]);
  const totals = statsRes.data.filter((r) => r.is_total);
  const sum = (k) => totals.reduce((a, r) => a + Number(r[k] || 0), 0);
  const calls = sum("total_calls");
  fill("#kpis", [
    ["Rozmowy dziś", num(calls), "kpi-calls"],
    ["Dopasowane do leadów", calls ? `${((sum("matched_calls") / calls) * 100).toFixed(1)}%` : "—", "kpi-matched"],
    ["Łączny czas dziś", dur(sum("total_duration_s")), "kpi-duration"],
    ["Nieprzypisane (łącznie)", num(unm.total), "kpi-unmatched"],
  ].map(([l, v, id]) => `<div class="kpi" data-testid="${id}"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join(""));
  fill("#recent", registryTable(recent.data, true));
  fill("#recent-unmatched", unmatchedTable(unm.data));
}

// ---------------------------------------------------------------- Leady
function registryTable(rows, withLead) {
  if (!rows.length) return `<p class="muted">Brak rozmów.</p>`;
  return `<table data-testid="registry"><thead><tr><th>Data i godzina</th>${withLead ? "<th>Lead</th>" : ""}<th>Typ</th><th class="num">Czas</th><th>Doradca</th><th>Klient</th><th>Nagranie</th><th>Notatka</th></tr></thead><tbody>
    ${rows.map((r) => `<tr>
      <td>${esc(dt(r.called_at))}</td>
      ${withLead ? `<td><a href="#/leady/${esc(r.lead_id)}">#${esc(r.lead_id)}</a></td>` : ""}
      <td>${chip(r.call_type, r.call_type_label)}</td>
      <td class="num">${esc(dur(r.duration_s))}</td>
      <td>${esc(r.advisor_name || "—")}</td>
      <td>${esc(r.client_name || "")} <span class="muted">${esc(r.client_e164 || "")}</span></td>
      <td>${r.recording_url ? `<audio controls preload="none" src="${esc(r.recording_url)}"></audio>` : `<span class="muted">—</span>`}</td>
      <td>${esc(r.note || "")}${r.lead_match_ambiguous ? ` <span class="muted" title="Kilka leadów ma ten numer">(niejednoznaczne)</span>` : ""}</td>
    </tr>`).join("")}</tbody></table>`;
}

async function leads(arg, first) {
  if (arg) return leadDetails(arg, first);
  frame(first, `<div data-screen="leady"><h1>Leady</h1>
    <div class="toolbar"><input id="q" placeholder="Szukaj: nazwa lub numer" data-testid="lead-search"><span class="muted" id="lead-count"></span></div>
    <div id="lead-list"></div></div>`);
  const input = $("#q");
  if (first) input.oninput = () => { clearTimeout(input._t); input._t = setTimeout(() => leads(null, false), 250); };
  const q = input.value.trim();
  let filter = "";
  if (q) {
    const digits = q.replace(/[^\d+]/g, "");
    filter = digits.length >= 6
      ? `&phones=cs.{${encodeURIComponent(digits.startsWith("+") ? digits : `+${digits}`)}}`
      : `&name=ilike.*${encodeURIComponent(q)}*`;
  }
  const { data, total } = await api(`console_leads?select=*&order=last_call_at.desc.nullslast,name&limit=${PAGE}${filter}`, { count: true });
  fill("#lead-count", `${num(total)} leadów`);
  fill("#lead-list", data.length ? `<table data-testid="lead-table"><thead><tr><th>Lead</th><th>Telefony</th><th>Opiekun</th><th>Ostatnia rozmowa</th></tr></thead><tbody>
    ${data.map((l) => `<tr class="click" data-href="#/leady/${esc(l.id)}"><td><a href="#/leady/${esc(l.id)}">${esc(l.name || `#${l.id}`)}</a></td><td>${esc((l.phones || []).join(", "))}</td><td>${esc(l.advisor_name || "—")}</td><td>${esc(dt(l.last_call_at))}</td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">Brak leadów.</p>`);
  for (const tr of document.querySelectorAll("tr.click")) tr.onclick = () => { location.hash = tr.dataset.href; };
}

async function leadDetails(id, first) {
  const page = Number(new URLSearchParams(location.hash.split("?")[1] || "").get("p") || 0);
  frame(first, `<div data-screen="lead"><p><a href="#/leady">← Leady</a></p><div id="lead-head"></div>
    <h2>Rejestr rozmów</h2><div id="lead-calls"></div><div class="pager" id="lead-pager"></div></div>`);
  const leadId = encodeURIComponent(String(id).split("?")[0]);
  const t0 = performance.now();
  const [lead, calls] = await Promise.all([
    api(`console_leads?select=*&id=eq.${leadId}`),
    api(`lead_call_registry?select=*&lead_id=eq.${leadId}&order=called_at.desc&limit=${PAGE}&offset=${page * PAGE}`, { count: true }),
  ]);
  const l = lead.data[0];
  fill("#lead-head", l
    ? `<h1 data-testid="lead-name">${esc(l.name)}</h1><div class="grid">
        <div class="kpi"><b>${esc((l.phones || []).join(", ") || "—")}</b><span>Telefony</span></div>
        <div class="kpi"><b>${esc(l.advisor_name || "—")}</b><span>Opiekun</span></div>
        <div class="kpi" data-testid="lead-call-count"><b>${num(calls.total)}</b><span>Rozmowy</span></div></div>`
    : `<h1>Lead #${esc(id)}</h1><div class="notice">Nie masz dostępu do tego leada albo on nie istnieje.</div>`);
  fill("#lead-calls", `<div class="card">${registryTable(calls.data, false)}</div>`);
  const pages = Math.max(1, Math.ceil((calls.total || 0) / PAGE));
  fill("#lead-pager", pages > 1 ? `<button ${page ? "" : "disabled"} onclick="location.hash='#/leady/${leadId}?p=${page - 1}'">‹</button> strona ${page + 1} z ${pages} <button ${page + 1 < pages ? "" : "disabled"} onclick="location.hash='#/leady/${leadId}?p=${page + 1}'">›</button>` : "");
  window.__lastRenderMs = performance.now() - t0;
}

// ---------------------------------------------------------------- Statystyki
function statsChart(rows) {
  const adv = rows.filter((r) => !r.is_total);
  if (!adv.length) return `<p class="muted">Brak rozmów w tym okresie.</p>`;
  const W = 760, left = 170, bar = 20, gap = 10, right = 60;
  const max = Math.max(...adv.map((r) => Number(r.total_calls)), 1);
  const scale = (W - left - right) / max;
  const H = adv.length * (bar + gap) + 30;
  let y = 10, out = "";
  for (const r of adv) {
    let x = left;
    out += `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${esc((r.advisor_name || "—").slice(0, 22))}</text>`;
    for (const [, label, color, key] of TYPES) {
      const w = Number(r[key] || 0) * scale;
      if (w > 0) out += `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${color}"><title>${esc(label)}: ${num(r[key])}</title></rect>`;
      x += w;
    }
    out += `<text x="${(x + 6).toFixed(1)}" y="${y + 14}">${num(r.total_calls)}</text>`;
    y += bar + gap;
  }
  const legend = TYPES.map(([, l, c]) => `<span><i style="background:${c}"></i>${esc(l)}</span>`).join("");
  return `<div class="legend">${legend}</div><svg data-testid="stats-chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Rozmowy według typu na doradcę">${out}</svg>`;
}
function shareChart(rows) {
  const adv = rows.filter((r) => !r.is_total);
  if (!adv.length) return "";
  const W = 760, left = 170, bar = 14, gap = 8, width = W - left - 70;
  const H = adv.length * (bar + gap) + 20;
  let y = 8, out = "";
  for (const r of adv) {
    const share = Number(r.matched_share || 0);
    out += `<text x="${left - 8}" y="${y + 11}" text-anchor="end">${esc((r.advisor_name || "—").slice(0, 22))}</text>
      <rect x="${left}" y="${y}" width="${width}" height="${bar}" fill="#e7ebf2"></rect>
      <rect x="${left}" y="${y}" width="${(width * share).toFixed(1)}" height="${bar}" fill="var(--accent)"></rect>
      <text x="${left + width + 6}" y="${y + 11}">${pct(share)}</text>`;
    y += bar + gap;
  }
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Udział rozmów dopasowanych do leadów">${out}</svg>`;
}

async function stats(_arg, first) {
  const today = localDate(new Date());
  frame(first, `<div data-screen="stats"><h1>Statystyki zespołu</h1>
    <div class="toolbar">
      <select id="period" data-testid="stats-period"><option value="1">Dziś</option><option value="7" selected>Ostatnie 7 dni</option><option value="30">Ostatnie 30 dni</option><option value="c">Własny zakres</option></select>
      <input type="date" id="from" value="${today}"> – <input type="date" id="to" value="${today}">
      <select id="team" data-testid="stats-team"><option value="">Wszystkie widoczne zespoły</option></select>
      <button id="go" class="primary">Pokaż</button>
    </div>
    <div id="stats-body"></div></div>`);
  if (first) {
    $("#go").onclick = () => stats(null, false);
    $("#period").onchange = () => stats(null, false);
    $("#team").onchange = () => stats(null, false);
  }
  const p = $("#period").value;
  let from, to;
  if (p === "c") { from = dayStart($("#from").value); to = new Date(dayStart($("#to").value).getTime() + 86400_000); }
  else { from = dayStart(localDate(new Date(Date.now() - (Number(p) - 1) * 86400_000))); to = new Date(Date.now() + 60_000); }
  const team = $("#team").value;
  // a change of period or team while a slower answer (a month) is on its way:
  // only the newest request may fill the screen
  const seq = (state.statsSeq = (state.statsSeq || 0) + 1);
  const t0 = performance.now();
  const { data } = await api("rpc/team_call_stats", { method: "POST", body: { p_from: from.toISOString(), p_to: to.toISOString(), p_team_id: team ? Number(team) : null } });
  if (seq !== state.statsSeq || !$("[data-screen=stats]")) return;  // superseded, or the user moved on
  window.__lastRenderMs = performance.now() - t0;
  const sel = $("#team");
  for (const r of data.filter((x) => x.is_total && x.team_id != null)) {
    if (![...sel.options].some((o) => o.value === String(r.team_id))) sel.add(new Option(r.team_name, r.team_id));
  }
  const cols = [["incoming", "Przych."], ["outgoing", "Wych."], ["missed", "Nieodeb."], ["rejected", "Odrz."], ["other", "Inne"]];
  fill("#stats-body", `
    <div class="card"><h2 style="margin-top:0">Rozmowy według typu</h2>${statsChart(data)}</div>
    <div class="card"><h2 style="margin-top:0">Udział rozmów dopasowanych do leadów</h2>${shareChart(data)}</div>
    <table data-testid="stats-table" data-period="${esc(p)}" data-team="${esc(team)}"><thead><tr><th>Zespół</th><th>Doradca</th>${cols.map(([, l]) => `<th class="num">${l}</th>`).join("")}<th class="num">Razem</th><th class="num">Czas łącznie</th><th class="num">Średnio</th><th class="num">Unikalni klienci</th><th class="num">Dopasowane</th></tr></thead><tbody>
    ${data.map((r) => `<tr${r.is_total ? ' style="font-weight:600;background:#fafbfc"' : ""} data-testid="${r.is_total ? "stats-total" : "stats-advisor"}">
      <td>${esc(r.team_name || "—")}</td><td>${r.is_total ? "Razem zespół" : esc(r.advisor_name || "—")}</td>
      ${cols.map(([k]) => `<td class="num">${num(r[k])}</td>`).join("")}
      <td class="num">${num(r.total_calls)}</td><td class="num">${dur(r.total_duration_s)}</td><td class="num">${dur(r.avg_duration_s)}</td>
      <td class="num">${num(r.unique_clients)}</td><td class="num">${pct(r.matched_share)}</td></tr>`).join("")}
    </tbody></table>`);
}

// ---------------------------------------------------------------- Nieprzypisane
function unmatchedTable(rows) {
  if (!rows.length) return `<p class="muted">Brak nieprzypisanych rozmów.</p>`;
  return `<table data-testid="unmatched-table"><thead><tr><th>Numer</th><th>Data i godzina</th><th>Status</th><th>Doradca</th><th class="num">Próby dopasowania</th><th>Ostatnia próba</th></tr></thead><tbody>
    ${rows.map((r) => `<tr><td>${esc(r.client_e164 || r.client_number || "—")}${r.client_e164 ? "" : ' <span class="muted">(nie da się dopasować)</span>'}</td><td>${esc(dt(r.called_at))}</td><td>${chip(r.call_type, r.call_type_label)}</td><td>${esc(r.advisor_name || "—")}</td><td class="num">${num(r.attempts)}</td><td>${esc(dt(r.last_attempt_at))}</td></tr>`).join("")}
    </tbody></table>`;
}
async function unmatched(_arg, first) {
  frame(first, `<div data-screen="unmatched"><h1>Nieprzypisane rozmowy</h1><p class="muted" id="unm-count"></p><div id="unm" class="card"></div></div>`);
  const { data, total } = await api(`unmatched_calls?select=*&order=called_at.desc&limit=${PAGE}`, { count: true });
  fill("#unm-count", `${num(total)} rozmów czeka na lead (pokazano najnowsze ${Math.min(PAGE, data.length)}).`);
  fill("#unm", unmatchedTable(data));
}

// ---------------------------------------------------------------- Kolejka
async function jobAction(kind, id) {
  const fn = kind === "retry" ? "queue_retry_job" : "queue_cancel_job";
  const { data } = await api(`rpc/${fn}`, { method: "POST", body: { p_id: id } });
  setStatus(data ? `Zadanie ${id}: ${kind === "retry" ? "ponowione" : "anulowane"}` : `Zadanie ${id}: bez zmian (stan już inny)`);
}
function jobsTable(rows, actions, testid) {
  if (!rows.length) return `<p class="muted">Brak.</p>`;
  return `<table data-testid="${testid}"><thead><tr><th class="num">Id</th><th>Rodzaj</th><th>Stan</th><th class="num">Próba</th><th>Termin / koniec</th><th>Ostatni błąd</th><th>Argumenty</th><th></th></tr></thead><tbody>
    ${rows.map((j) => `<tr data-job="${esc(j.id)}"><td class="num">${esc(j.id)}</td><td>${esc(j.kind)}</td><td>${st(j.state, JOB_STATE_PL[j.state])}</td>
      <td class="num">${esc(j.attempt)}/${esc(j.max_attempts)}</td><td>${esc(dt(j.finished_at || j.run_at))}</td>
      <td class="err">${esc(j.last_error || "")}</td>
      <td><details><summary>pokaż</summary><pre>${esc(JSON.stringify(j.args, null, 2))}</pre></details></td>
      <td>${actions.includes("retry") ? `<button class="primary" data-act="retry" data-id="${esc(j.id)}" data-testid="retry-${esc(j.id)}">Ponów</button>` : ""}
          ${actions.includes("cancel") ? `<button class="danger" data-act="cancel" data-id="${esc(j.id)}" data-testid="cancel-${esc(j.id)}">Anuluj</button>` : ""}</td></tr>`).join("")}
    </tbody></table>`;
}
async function queue(_arg, first) {
  frame(first, `<div data-screen="queue"><h1>Kolejka zadań</h1>
    <div class="card" id="depth"></div>
    <h2>W trakcie</h2><div id="q-running"></div>
    <h2>Ponawiane (czekają na kolejną próbę)</h2><div id="q-retryable"></div>
    <h2>Oczekujące</h2><div id="q-available"></div>
    <h2>Odrzucone</h2><div id="q-discarded"></div>
    <h2>Anulowane (24 h)</h2><div id="q-cancelled"></div></div>`);
  const sel = "select=id,kind,state,attempt,max_attempts,run_at,finished_at,last_error,args";
  const [depth, running, retryable, available, discarded, cancelled] = await Promise.all([
    api("queue_depth?select=*"),
    api(`queue_jobs?${sel}&state=eq.running&order=attempted_at.desc&limit=50`),
    api(`queue_jobs?${sel}&state=eq.retryable&order=run_at&limit=50`),
    api(`queue_jobs?${sel}&state=eq.available&order=run_at&limit=20`),
    api(`queue_jobs?${sel}&state=eq.discarded&order=finished_at.desc&limit=50`),
    api(`queue_jobs?${sel}&state=eq.cancelled&order=finished_at.desc&limit=20`),
  ]);
  const kinds = [...new Set(depth.data.map((r) => r.kind))].sort();
  const cell = (k, s) => depth.data.find((r) => r.kind === k && r.state === s)?.jobs;
  fill("#depth", kinds.length ? `<table data-testid="queue-depth"><thead><tr><th>Rodzaj</th>${JOB_STATES.map((s) => `<th class="num">${JOB_STATE_PL[s]}</th>`).join("")}</tr></thead><tbody>
    ${kinds.map((k) => `<tr><td>${esc(k)}</td>${JOB_STATES.map((s) => `<td class="num">${cell(k, s) ? st(s, num(cell(k, s))) : '<span class="muted">0</span>'}</td>`).join("")}</tr>`).join("")}
    </tbody></table><p class="muted">Zadania żywe oraz zakończone w ciągu ostatnich 24 godzin.</p>` : `<p class="muted">Kolejka jest pusta.</p>`);
  fill("#q-running", jobsTable(running.data, ["cancel"], "q-running"));
  fill("#q-retryable", jobsTable(retryable.data, ["cancel"], "q-retryable"));
  fill("#q-available", jobsTable(available.data, ["cancel"], "q-available"));
  fill("#q-discarded", jobsTable(discarded.data, ["retry"], "q-discarded"));
  fill("#q-cancelled", jobsTable(cancelled.data, ["retry"], "q-cancelled"));
  for (const b of document.querySelectorAll("[data-act]")) {
    b.onclick = async () => { b.disabled = true; await jobAction(b.dataset.act, Number(b.dataset.id)); await queue(null, false); };
  }
}

// ---------------------------------------------------------------- Uzgodnienia
async function reconciliation(_arg, first) {
  frame(first, `<div data-screen="recon"><h1>Uzgodnienia z API Callyzer</h1>
    <div class="toolbar"><button id="recon-now" class="primary" data-testid="recon-now">Uruchom teraz</button><span id="recon-msg" class="muted"></span></div>
    <div id="recon"></div></div>`);
  if (first) $("#recon-now").onclick = async () => {
    try {
      const { data } = await api("rpc/callyzer_reconcile", { method: "POST", body: {} });
      fill("#recon-msg", data?.run_id ? `Uruchomiono przebieg #${esc(data.run_id)}` : `Przebieg #${esc(data?.running_run_id)} jeszcze trwa`);
    } catch (e) { fill("#recon-msg", `Błąd: ${esc(e.message)}`); }
    reconciliation(null, false);
  };
  const res = await optional("callyzer_sync_log?select=*&order=started_at.desc&limit=30");
  if (!res) return fill("#recon", `<div class="notice">Widok <code>callyzer_sync_log</code> nie istnieje w tej bazie (uzgodnienia — issue 4).</div>`);
  fill("#recon", res.data.length ? `<table data-testid="recon-table"><thead><tr><th class="num">#</th><th>Start</th><th>Wyzwalacz</th><th>Okno</th><th class="num">Strony</th><th class="num">Pobrane</th><th class="num">Nowe</th><th class="num">Zmienione</th><th class="num">Pominięte</th><th class="num">Błędy</th><th class="num">Czas</th><th>Wynik</th></tr></thead><tbody>
    ${res.data.map((r) => `<tr><td class="num">${esc(r.id)}</td><td>${esc(dt(r.started_at))}</td><td>${esc(r.trigger)}</td><td>${esc(dt(r.window_from))} – ${esc(dt(r.window_to))}</td>
      <td class="num">${num(r.pages)}</td><td class="num">${num(r.fetched)}</td><td class="num">${num(r.new)}</td><td class="num">${num(r.updated)}</td><td class="num">${num(r.skipped)}</td><td class="num">${num(r.errors)}</td>
      <td class="num">${r.duration_ms == null ? "—" : `${(Number(r.duration_ms) / 1000).toFixed(1)} s`}</td><td>${st(r.outcome || "running", r.outcome || "w toku")}${r.error ? `<div class="err">${esc(r.error)}</div>` : ""}</td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">Jeszcze nie było przebiegu.</p>`);
}

// ---------------------------------------------------------------- Alerty i raporty
async function alerts(_arg, first) {
  frame(first, `<div data-screen="alerts"><h1>Alerty</h1><div id="alerts"></div><h2>Raporty dzienne</h2><div id="reports"></div></div>`);
  const [a, r] = await Promise.all([
    optional("alerts?select=*&order=opened_at.desc&limit=50"),
    optional("daily_reports?select=*&order=day.desc&limit=30"),
  ]);
  fill("#alerts", !a ? `<div class="notice">Widok <code>alerts</code> nie istnieje w tej bazie (monitoring — issue 5).</div>`
    : a.data.length ? `<table data-testid="alerts-table"><thead><tr><th>Otwarty</th><th>Rodzaj</th><th>Komunikat</th><th class="num">Wartość</th><th class="num">Próg</th><th class="num">Powtórzenia</th><th>Stan</th></tr></thead><tbody>
      ${a.data.map((x) => `<tr><td>${esc(dt(x.opened_at))}</td><td>${esc(x.kind)}</td><td>${esc(x.message)}</td><td class="num">${num(x.value)}</td><td class="num">${num(x.threshold)}</td><td class="num">${num(x.repeats)}</td>
        <td>${x.resolved_at ? st("ok", `rozwiązany ${dt(x.resolved_at)}`) : st("error", "otwarty")}</td></tr>`).join("")}</tbody></table>`
    : `<p class="muted">Brak alertów.</p>`);
  fill("#reports", !r ? `<div class="notice">Widok <code>daily_reports</code> nie istnieje w tej bazie (raporty — issue 5).</div>`
    : r.data.length ? `<table data-testid="reports-table"><thead><tr><th>Dzień</th><th class="num">Webhooki</th><th class="num">Przetworzone</th><th class="num">Błędy</th><th class="num">Śr. czas [ms]</th><th class="num">p95 [ms]</th><th class="num">Nowe rozmowy</th><th class="num">Dopasowanie</th></tr></thead><tbody>
      ${r.data.map((x) => `<tr><td>${esc(x.day)}</td><td class="num">${num(x.webhooks_received)}</td><td class="num">${num(x.webhooks_processed)}</td><td class="num">${num(x.webhooks_failed)}</td><td class="num">${num(x.processing_avg_ms)}</td><td class="num">${num(x.processing_p95_ms)}</td><td class="num">${num(x.new_calls)}</td><td class="num">${x.match_rate_pct == null ? "—" : `${esc(x.match_rate_pct)}%`}</td></tr>`).join("")}</tbody></table>`
    : `<p class="muted">Brak raportów (powstają po północy).</p>`);
}

// ---------------------------------------------------------------- CRM
async function crm(_arg, first) {
  frame(first, `<div data-screen="crm"><h1>Wysyłki do CRM (BPMsoft)</h1><p id="crm-msg" class="muted"></p><div id="crm"></div></div>`);
  const { data } = await api("crm_dispatches?select=*&order=attempted_at.desc&limit=50");
  fill("#crm", data.length ? `<table data-testid="crm-table"><thead><tr><th class="num">#</th><th>Czas</th><th class="num">Zdarzenie</th><th>Status</th><th class="num">HTTP</th><th class="num">Kod</th><th>Odpowiedź / błąd</th><th class="num">ms</th><th>Ładunek</th><th></th></tr></thead><tbody>
    ${data.map((d) => `<tr data-dispatch="${esc(d.id)}"><td class="num">${esc(d.id)}</td><td>${esc(dt(d.attempted_at))}</td><td class="num">${esc(d.event_id)}</td>
      <td>${st(d.status)}${d.forced ? ' <span class="muted">(wymuszona)</span>' : ""}</td><td class="num">${esc(d.http_status ?? "—")}</td><td class="num">${esc(d.result_code ?? "—")}</td>
      <td class="err">${esc(d.error || d.response_text || "")}</td><td class="num">${esc(d.duration_ms ?? "—")}</td>
      <td><details><summary>pokaż</summary><pre>${esc(JSON.stringify(d.payload, null, 2))}</pre></details></td>
      <td><button data-resend="${esc(d.event_id)}" data-testid="resend-${esc(d.event_id)}">Wyślij ponownie</button></td></tr>`).join("")}
    </tbody></table>` : `<p class="muted">Brak wysyłek.</p>`);
  for (const b of document.querySelectorAll("[data-resend]")) {
    b.onclick = async () => {
      b.disabled = true;
      try {
        const { data: r } = await api("rpc/elevenlabs_resend_crm", { method: "POST", body: { p_event_id: Number(b.dataset.resend), p_force: true } });
        fill("#crm-msg", r.queued ? `Zdarzenie ${esc(r.event_id)}: wysyłka w kolejce (zadanie ${esc(r.job_id)}).` : `Zdarzenie ${esc(r.event_id)}: wysyłka już czeka w kolejce.`);
      } catch (e) { fill("#crm-msg", `Błąd: ${esc(e.message)}`); }
      await crm(null, false);
    };
  }
}

boot();
