// bench/peers: one system's three figures, run by run.sh as
//   node bench.js tforge|graphile-worker|pg-boss DATABASE
// and printed as "enqueue <jobs/s>", "drain <jobs/s>", "latency <p50 ms> <p99 ms>".
// Every system gets CONNECTIONS database connections for its workers and
// CONCURRENCY concurrent no-op handlers, and the same jobs: JOBS no-op jobs
// enqueued in bulk in chunks of CHUNK from one connection, drained with
// no-op handlers (end to end: from the workers' start until every job is
// recorded as completed in the database), then LATENCY_WARMUP + LATENCY_JOBS
// jobs submitted one at a time at RATE jobs/s to idle workers, the last
// LATENCY_JOBS measured (submit -> handler start; LATENCY_SAMPLES=FILE
// writes them, one ms figure a line).
// STEPS (default "enqueue drain latency") runs some steps only: without
// drain, the enqueued jobs are deleted before the workers start, so that
// the latency step still finds them idle; a step not run prints "-".
'use strict';
const pg = require('pg');

const system = process.argv[2];
const database = process.argv[3];
const env = (name, dflt) => Number(process.env[name] || dflt);
const JOBS = env('JOBS', 100000);
const CHUNK = env('CHUNK', 5000);
const CONNECTIONS = env('CONNECTIONS', 4);
const CONCURRENCY = env('CONCURRENCY', 4);
const BATCH = env('BATCH', 500);
const LATENCY_JOBS = env('LATENCY_JOBS', 300);
const LATENCY_WARMUP = env('LATENCY_WARMUP', 10);
const RATE = env('RATE', 10);
const SINGLE_JOBS = env('SINGLE_JOBS', 5000);
const STEPS = new Set((process.env.STEPS || 'enqueue drain latency').split(/[\s,]+/));
const DRAINED = STEPS.has('enqueue') && STEPS.has('drain') ? JOBS : 0; // jobs the drain step waits for
const conn = { database };
const connectionString = `postgres:///${database}`; // PGHOST, PGPORT, PGUSER from the environment

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
function quantile(xs, q) {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
function report(enqueue, drain, lat) {
	if (process.env.LATENCY_SAMPLES) require('fs').writeFileSync(process.env.LATENCY_SAMPLES, lat.map((x) => x.toFixed(3) + '\n').join(''));
	const fig = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : '-');
	console.log(`enqueue ${fig(enqueue, 0)}`);
	console.log(`drain ${DRAINED ? fig(drain, 0) : '-'}`);
	console.log(`latency ${lat.length ? fig(quantile(lat, 0.5), 2) : '-'} ${lat.length ? fig(quantile(lat, 0.99), 2) : '-'}`);
}

// The enqueue step: JOBS jobs in chunks of CHUNK, timed (jobs/s), if STEPS has it;
// then, when the drain step is not run, clear() deletes them.
async function enqueueStep(enqueueChunk, clear) {
	if (!STEPS.has('enqueue')) return NaN;
	const t0 = now();
	for (let n = 0; n < JOBS; n += CHUNK) await enqueueChunk(Math.min(CHUNK, JOBS - n));
	const rate = JOBS / ((now() - t0) / 1000);
	if (!DRAINED) await clear();
	return rate;
}

// Drain and latency share one protocol: handler(payload) is called for every
// job; during the drain it counts, during the latency phase it records
// now - payload.t (payload.t is set just before the submit, same clock).
function makeHandler() {
	const h = { done: 0, lat: [], onDone: null };
	h.run = (payload) => {
		if (payload && payload.t !== undefined) h.lat.push(now() - payload.t);
		h.done++;
		if (h.onDone && h.done >= h.target) { const f = h.onDone; h.onDone = null; f(); }
	};
	h.waitFor = (target) => new Promise((r) => {
		h.target = target;
		if (h.done >= target) r(); else h.onDone = r;
	});
	return h;
}

// Before the first submit, the same for every system: VACUUM (ANALYZE) of
// the system's database, so that the drain's dead rows are not cleaned up
// by an autovacuum worker racing the measurement (it would land in one
// system's phase or another's depending on the naptime), then 1 s for the
// workers to be idle and listening (or polling). The first LATENCY_WARMUP
// jobs, submitted at the same rate, are not measured: the first job after
// the VACUUM (ANALYZE) and the idle second is a cold start for every
// system (about 5 ms against 1-2 ms for the next ones, tforge and
// graphile-worker alike: cached plans re-made after the ANALYZE, idle
// backends and event loops woken), and with 100 measured jobs the p99 is
// the second-slowest, so one or two cold starts made it.
async function latencyPhase(submitOne, h, admin) {
	h.done = 0; h.lat = [];
	if (!STEPS.has('latency')) return [];
	await admin.query('VACUUM (ANALYZE)');
	await sleep(1000);
	for (let i = 0; i < LATENCY_WARMUP + LATENCY_JOBS; i++) {
		const next = now() + 1000 / RATE;
		await submitOne(i < LATENCY_WARMUP ? { warmup: true } : { t: now() });
		const wait = next - now();
		if (wait > 0) await sleep(wait);
	}
	await h.waitFor(LATENCY_WARMUP + LATENCY_JOBS);
	return h.lat;
}

async function countUntil(client, sql, target) {
	for (;;) {
		const r = await client.query(sql);
		if (Number(r.rows[0].n) >= target) return;
		await sleep(5);
	}
}

// ------------------------------------------------------------------- tforge
// The worker pool (what graphile-worker's pool does, over tforge's calls):
// CONNECTIONS connections, each a claimer that runs claim_tasks, the
// handlers (CONCURRENCY / CONNECTIONS each, no-op) and complete_tasks under
// the claims' fencing tokens; every statement is a named prepared
// statement (parsed once per connection). One connection also LISTENs on
// tforge_tasks, so that a submit signals one backend and one Node client,
// not one per connection; a notification wakes one idle claimer.
// Claim sizes follow the moment: a claimer woken from idle claims 1 task
// (claim_tasks' cheapest statement, the one a lone task needs); a claim
// that comes back full means more may wait (one notification stands for a
// whole submit_tasks batch), so the claimer claims again with twice the
// size (up to BATCH), and a full claim of more than one task (a backlog)
// also wakes one more idle claimer; a claim that comes back short means
// the queue is empty as of that claim, and the claimer waits. A notification that arrives while no claimer waits is kept
// (pulse) and sends the next claimer that would wait back to claim, so no
// wake-up is lost; as a safety net the pool polls once a second (the
// listener's claimer claims after 1 s without a wake-up), as
// graphile-worker's pool does with pollInterval 1000.
// At start every claimer claims BATCH: a backlog may be waiting.
const TFORGE_CLAIM = 'SELECT task_id, claim_token, payload FROM tforge.claim_tasks($1, $2)';
const TFORGE_COMPLETE = 'SELECT count(*) FROM tforge.complete_tasks($1, $2::bigint[], NULL, $3::bigint[])';

async function tforge() {
	const admin = new pg.Client(conn);
	await admin.connect();
	// one submit_tasks per chunk: the same CHUNK jobs per statement as the
	// peers' bulk calls, {} payloads (the peers' are {} too)
	const payloads = Array.from({ length: CHUNK }, () => '{}');
	const enqueue = await enqueueStep(
		(k) => admin.query('SELECT count(*) FROM tforge.submit_tasks($1, $2::jsonb[])', ['noop', payloads.slice(0, k)]),
		() => admin.query("DELETE FROM tforge.tasks WHERE task_type = 'noop'"));
	let t0;

	const h = makeHandler();
	let stop = false;
	// the claimers waiting for work, oldest first, as { i, wake }
	const idle = [];
	let pulse = false; // a notification came while no claimer waited
	const wake = (k) => idle.splice(k, 1)[0].wake();
	// a notification wakes the listening connection's claimer when it
	// waits (its backend has just run to deliver the notification), else
	// the claimer that has waited longest
	const wakeOne = () => {
		if (idle.length === 0) { pulse = true; return; }
		const k = idle.findIndex((x) => x.i === 0);
		wake(k >= 0 ? k : 0);
	};
	const clients = [];
	for (let i = 0; i < CONNECTIONS; i++) {
		const c = new pg.Client(conn);
		await c.connect();
		clients.push(c);
	}
	clients[0].on('notification', wakeOne);
	await clients[0].query('LISTEN tforge_tasks');

	async function claimer(c, i) {
		const id = `bench-${i}`;
		let size = BATCH;
		while (!stop) {
			const r = await c.query({ name: 'tforge_claim', text: TFORGE_CLAIM, values: [id, size] });
			const got = r.rows.length;
			const full = got === size;
			if (got > 0) {
				for (const row of r.rows) h.run(row.payload);
				if (full && size > 1 && idle.length > 0) wake(0); // a backlog: one more claimer
				await c.query({ name: 'tforge_complete', text: TFORGE_COMPLETE,
					values: [id, r.rows.map((x) => x.task_id), r.rows.map((x) => x.claim_token)] });
			}
			if (full) { size = Math.min(BATCH, size * 2); continue; }
			size = 1;
			if (pulse) { pulse = false; continue; }
			if (stop) break;
			await new Promise((res) => {
				const me = { i, wake: () => { clearTimeout(timer); res(); } };
				// the pool's poll (the listener's claimer): every 1 s without a wake-up
				const timer = i !== 0 ? null
					: setTimeout(() => { const k = idle.indexOf(me); if (k >= 0) idle.splice(k, 1); res(); }, 1000);
				idle.push(me);
			});
		}
	}
	t0 = now();
	const workers = clients.map((c, i) => claimer(c, i));
	await h.waitFor(DRAINED);
	await countUntil(admin, "SELECT count(*) AS n FROM tforge.tasks WHERE task_type = 'noop' AND status = 'done'", DRAINED);
	const drain = JOBS / ((now() - t0) / 1000);

	const lat = await latencyPhase((p) => admin.query({ name: 'tforge_submit', text: 'SELECT tforge.submit_task($1, $2)', values: ['noop', p] }), h, admin);
	stop = true;
	while (idle.length > 0) wake(0);
	await Promise.all(workers);
	await Promise.all(clients.map((c) => c.end()));
	await admin.end();
	report(enqueue, drain, lat);
}

// ------------------------------------------------------------ tforge-single
// tforge's one-task-per-call cycle, the baseline its batches are measured
// against: SINGLE_JOBS jobs (enqueued in bulk as above) drained by the same
// CONNECTIONS workers, each claiming one task (claim_tasks(id, 1)), running
// its no-op handler and completing it with complete_task, one call at a time.
// Prints "drain <jobs/s>" only.
async function tforgeSingle() {
	const admin = new pg.Client(conn);
	await admin.connect();
	const payloads = Array.from({ length: CHUNK }, () => '{}');
	for (let n = 0; n < SINGLE_JOBS; n += CHUNK) {
		const k = Math.min(CHUNK, SINGLE_JOBS - n);
		await admin.query('SELECT count(*) FROM tforge.submit_tasks($1, $2::jsonb[])', ['noop', payloads.slice(0, k)]);
	}
	const h = makeHandler();
	async function worker(i) {
		const c = new pg.Client(conn);
		await c.connect();
		const id = `single-${i}`;
		for (;;) {
			const r = await c.query('SELECT task_id, claim_token, payload FROM tforge.claim_tasks($1, 1)', [id]);
			if (r.rows.length === 0) break;
			h.run(r.rows[0].payload);
			await c.query('SELECT 1 FROM tforge.complete_task($1, $2, NULL, $3)', [r.rows[0].task_id, id, r.rows[0].claim_token]);
		}
		await c.end();
	}
	const t0 = now();
	const workers = [];
	for (let i = 0; i < CONNECTIONS; i++) workers.push(worker(i));
	await Promise.all(workers);
	await countUntil(admin, "SELECT count(*) AS n FROM tforge.tasks WHERE task_type = 'noop' AND status = 'done'", SINGLE_JOBS);
	console.log(`drain ${(SINGLE_JOBS / ((now() - t0) / 1000)).toFixed(0)}`);
	await admin.end();
}

// ---------------------------------------------------------- graphile-worker
// Its documented batching: the local queue (the pool fetches and locks
// BATCH jobs at a time) and batched completion (completeJobBatchDelay 0).
async function graphileWorker() {
	const { run, makeWorkerUtils } = require('graphile-worker');
	const utils = await makeWorkerUtils({ connectionString });
	await utils.migrate();
	const enqueue = await enqueueStep(
		(k) => utils.addJobs(Array.from({ length: k }, () => ({ identifier: 'noop', payload: {} }))),
		() => utils.withPgClient((c) => c.query('DELETE FROM graphile_worker._private_jobs')));
	let t0;

	const h = makeHandler();
	const preset = {
		worker: {
			connectionString, maxPoolSize: CONNECTIONS, concurrentJobs: CONCURRENCY,
			localQueue: { size: BATCH }, completeJobBatchDelay: 0, failJobBatchDelay: 0,
			pollInterval: 1000, preparedStatements: true,
		},
	};
	const quiet = { logger: new (require('graphile-worker').Logger)(() => () => {}) };
	const admin = new pg.Client(conn);
	await admin.connect();
	t0 = now();
	const runner = await run({ preset, noHandleSignals: true, ...quiet, taskList: { noop: async (payload) => h.run(payload) } });
	await h.waitFor(DRAINED);
	await countUntil(admin, 'SELECT (SELECT count(*) FROM graphile_worker._private_jobs) = 0 AS n', 1);
	const drain = JOBS / ((now() - t0) / 1000);

	const lat = await latencyPhase((p) => utils.addJob('noop', p), h, admin);
	await runner.stop();
	await utils.release();
	await admin.end();
	report(enqueue, drain, lat);
}

// ------------------------------------------------------------------ pg-boss
// Its documented batching: work() with batchSize fetches BATCH jobs per
// poll; one work() per concurrent handler; the shortest polling interval
// it allows (0.5 s: pg-boss 10 does not LISTEN).
async function pgBoss() {
	const PgBoss = require('pg-boss');
	const boss = new PgBoss({ connectionString, max: CONNECTIONS, supervise: false, schedule: false });
	boss.on('error', (e) => console.error(e));
	await boss.start();
	await boss.createQueue('noop');
	const enqueue = await enqueueStep(
		(k) => boss.insert(Array.from({ length: k }, () => ({ name: 'noop', data: {} }))),
		() => boss.getDb().executeSql("DELETE FROM pgboss.job WHERE name = 'noop'"));
	let t0;

	const h = makeHandler();
	const admin = new pg.Client(conn);
	await admin.connect();
	t0 = now();
	for (let i = 0; i < CONCURRENCY; i++)
		await boss.work('noop', { batchSize: BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => { for (const j of jobs) h.run(j.data); });
	await h.waitFor(DRAINED);
	await countUntil(admin, "SELECT count(*) AS n FROM pgboss.job WHERE name = 'noop' AND state = 'completed'", DRAINED);
	const drain = JOBS / ((now() - t0) / 1000);

	const lat = await latencyPhase((p) => boss.send('noop', p), h, admin);
	await boss.stop({ graceful: true, wait: true, timeout: 10000 });
	await admin.end();
	report(enqueue, drain, lat);
}

const run = { tforge, 'tforge-single': tforgeSingle, 'graphile-worker': graphileWorker, 'pg-boss': pgBoss }[system];
if (!run) { console.error(`unknown system ${system}`); process.exit(2); }
run().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
