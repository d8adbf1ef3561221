// graphile-worker 0.17 (npm) as the baseline of bench/queue.rs, in its fastest
// documented configuration: a local queue that fetches jobs in batches and
// batched completion (https://worker.graphile.org/docs/performance#batching).
//   node bench/graphile.mjs drain   <url> <jobs> <concurrency>   → {"jobs_per_s": …}
//   node bench/graphile.mjs latency <url> <rate> <seconds>       → {"p50_ms": …, …}
import { createRequire } from "node:module";
// The packages live in tools/node_modules (scripts/install-tools.sh puts them there).
const require = createRequire(new URL("../tools/package.json", import.meta.url));
const { Logger, run, runMigrations } = require("graphile-worker");
const pg = require("pg");
import { performance } from "node:perf_hooks";

const [mode, url, a, b] = process.argv.slice(2);
const nowMs = () => performance.timeOrigin + performance.now();
const pool = new pg.Pool({ connectionString: url, max: 4 });
// graphile-worker logs every job at info; the benchmark must not measure a terminal.
const quiet = new Logger(() => () => {});
await runMigrations({ connectionString: url, logger: quiet });
await pool.query("delete from graphile_worker._private_jobs");

const preset = {
  worker: {
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};

if (mode === "drain") {
  const jobs = Number(a), concurrency = Number(b);
  await pool.query(
    `select graphile_worker.add_jobs(array(
       select row('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec
       from generate_series(1, $1)))`,
    [jobs],
  );
  const start = nowMs();
  let ran = 0;
  const runner = await run({
    connectionString: url, concurrency, noHandleSignals: true, pollInterval: 1000,
    logger: quiet, preset, taskList: { noop: async () => { ran++; } },
  });
  // As for callsync (bench/queue.rs): count runs in the task and only poll the
  // table (a count over every row) once all have run, so the wait does not take
  // Postgres CPU from the worker it measures.
  while (ran < jobs) await new Promise((r) => setTimeout(r, 5));
  for (;;) {
    const { rows } = await pool.query("select count(*)::int as n from graphile_worker._private_jobs");
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const secs = (nowMs() - start) / 1000;
  await runner.stop();
  console.log(JSON.stringify({ jobs, secs, jobs_per_s: jobs / secs }));
} else if (mode === "latency") {
  const rate = Number(a), seconds = Number(b);
  const samples = [];
  const runner = await run({
    connectionString: url, concurrency: 32, noHandleSignals: true, pollInterval: 1000,
    logger: quiet, preset,
    taskList: { lat: async (payload) => { samples.push(nowMs() - payload.t); } },
  });
  const total = rate * seconds;
  const start = nowMs();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await pool.query("select graphile_worker.add_job('lat', json_build_object('t', $1::float8))", [nowMs()]);
  }
  const deadline = nowMs() + 30000;
  while (samples.length < total && nowMs() < deadline) await new Promise((r) => setTimeout(r, 10));
  await runner.stop();
  samples.sort((x, y) => x - y);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  console.log(JSON.stringify({ samples: samples.length, p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99) }));
} else {
  console.error("usage: graphile.mjs drain|latency …");
  process.exit(2);
}
await pool.end();
