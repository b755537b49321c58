// The dashboard: every 2 s it reads the operator's API list, each RealtimeAPI's last minutes
// (GET /v1/apis/{api}/history) and the selected API's log, and redraws. It holds no state of its
// own beyond the page: the operator's API is the one source of every number shown.
import { ApiCharts } from './charts.js';
import { Operator, OperatorError, forgetToken, saveToken, takeToken } from './operator.js';

const POLL_MS = 2000;
const LOG_TAIL_BYTES = 64 * 1024;  // the first read of a log: its last 64 KiB
const LOG_KEEP_CHARS = 256 * 1024;  // what the page keeps of a followed log
const $ = (id) => document.getElementById(id);

const state = {
  operator: null,
  selected: new URLSearchParams(location.search).get('api'),
  job: null,  // the selected job of a BatchAPI
  charts: null,
  log: { key: null, offset: -LOG_TAIL_BYTES },
  timer: null,
};

// Formatting: '—' where there is nothing to show (no requests in an interval, say).
function fixed(value, digits) {
  return value === null || value === undefined || Number.isNaN(value) ? '—' : value.toFixed(digits);
}

function cell(row, text, className, field) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  if (field) td.dataset.field = field;
  row.appendChild(td);
  return td;
}

function fillBody(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

function showBanner(message) {
  const banner = $('banner');
  banner.textContent = message;
  banner.hidden = !message;
}

// The newest interval of a RealtimeAPI's history, and its latest in-flight sample.
function latest(history) {
  const requests = history?.requests ?? [];
  const last = requests.length ? requests[requests.length - 1] : null;
  const inFlight = history?.in_flight ?? [];
  return {
    rate: last ? last.requests_per_second : null,
    p50: last ? last.p50_ms : null,
    p99: last ? last.p99_ms : null,
    inFlight: inFlight.length ? inFlight[inFlight.length - 1][1] : null,
  };
}

function replicasText(api) {
  if (!api.status) return '—';
  const counts = api.status.replica_counts;
  return `${counts.updated.ready + counts.stale.ready} / ${counts.requested}`;
}

function statusOf(api) {
  if (api.status) return api.status.status;
  if (api.spec.kind === 'BatchAPI') {
    const running = (api.job_statuses ?? []).filter((j) => !j.end_time).length;
    return running ? `${running} job(s) running` : 'ready';
  }
  return 'live';  // a TrafficSplitter routes to its APIs
}

function renderApis(apis, histories) {
  const rows = apis.map((api) => {
    const name = api.spec.name;
    const row = document.createElement('tr');
    row.dataset.api = name;
    if (name === state.selected) row.className = 'selected';
    const link = document.createElement('a');
    link.href = `?api=${encodeURIComponent(name)}`;
    link.textContent = name;
    const first = cell(row, '', null, 'name');
    first.appendChild(link);
    cell(row, api.spec.kind, null, 'kind');
    const status = statusOf(api);
    cell(row, status, `status-${status.replace(/[^a-z_]/g, '_')}`, 'status');
    cell(row, replicasText(api), 'num', 'replicas');
    const now = latest(histories.get(name));
    const network = api.metrics?.network_stats;
    const realtime = api.spec.kind === 'RealtimeAPI';
    cell(row, realtime ? fixed(now.rate, 1) : '—', 'num', 'rate');
    cell(row, realtime ? fixed(now.p50, 2) : '—', 'num', 'p50');
    cell(row, realtime ? fixed(now.p99, 2) : '—', 'num', 'p99');
    cell(row, realtime ? fixed(now.inFlight, 2) : '—', 'num', 'in_flight');
    cell(row, network ? String(network.code_2xx) : '0', 'num', 'code_2xx');
    cell(row, network ? String(network.code_4xx) : '0', 'num', 'code_4xx');
    cell(row, network ? String(network.code_5xx) : '0', 'num', 'code_5xx');
    cell(row, network ? fixed(network.latency, 3) : '—', 'num', 'mean_latency');
    row.addEventListener('click', (event) => {
      if (event.target.tagName === 'A') event.preventDefault();
      select(name);
    });
    return row;
  });
  fillBody($('apis'), rows);
  $('no-apis').hidden = apis.length > 0;
}

function renderDecisions(history) {
  const decisions = (history?.decisions ?? []).slice(-20).reverse();
  fillBody($('decisions'), decisions.map((d) => {
    const row = document.createElement('tr');
    cell(row, new Date(d.time).toLocaleTimeString([], { hour12: false }), null, 'time');
    cell(row, fixed(d.avg_in_flight, 2), 'num', 'avg_in_flight');
    cell(row, String(d.recommendation), 'num', 'recommendation');
    cell(row, d.from === d.to ? String(d.to) : `${d.from} → ${d.to}`, 'num', 'replicas');
    return row;
  }));
  $('no-decisions').hidden = decisions.length > 0;
}

function progress(job) {
  const total = job.total_batch_count ?? 0;
  const m = job.batch_metrics ?? { succeeded: 0, failed: 0 };
  const bar = document.createElement('progress');
  bar.max = Math.max(total, 1);
  bar.value = m.succeeded + m.failed;
  return { bar, text: ` ${m.succeeded + m.failed} / ${total}` };
}

function renderJobs(api) {
  const jobs = api.job_statuses ?? [];
  if (!jobs.some((j) => j.job_id === state.job)) state.job = jobs.length ? jobs[0].job_id : null;
  fillBody($('jobs'), jobs.map((job) => {
    const row = document.createElement('tr');
    row.dataset.job = job.job_id;
    if (job.job_id === state.job) row.className = 'selected';
    cell(row, job.job_id, null, 'job_id');
    cell(row, job.status, `status-${job.status}`, 'status');
    const p = progress(job);
    const td = cell(row, '', null, 'progress');
    td.append(p.bar, p.text);
    cell(row, String(job.batch_metrics?.succeeded ?? 0), 'num', 'succeeded');
    cell(row, String(job.batch_metrics?.failed ?? 0), 'num', 'failed');
    cell(row, String(job.batches_in_queue ?? 0), 'num', 'in_queue');
    cell(row, String(job.worker_counts?.running ?? 0), 'num', 'workers_running');
    cell(row, job.start_time ?? '—', null, 'start_time');
    cell(row, job.end_time ?? '—', null, 'end_time');
    row.addEventListener('click', () => { state.job = job.job_id; tick(); });
    return row;
  }));
  $('no-jobs').hidden = jobs.length > 0;
  const job = jobs.find((j) => j.job_id === state.job);
  const letters = job?.dead_letters ?? [];
  $('dead-letters-panel').hidden = !job;
  if (job) {
    $('dead-letters-title').textContent = letters.length
      ? `Dead letters of job ${job.job_id} (${letters.length})`
      : `Job ${job.job_id} has no dead letters`;
    fillBody($('dead-letters'), letters.map((d) => {
      const row = document.createElement('tr');
      cell(row, String(d.batch_index), 'num', 'batch_index');
      cell(row, String(d.attempts), 'num', 'attempts');
      cell(row, d.error, 'error', 'error');
      return row;
    }));
  }
}

async function renderLogs(api) {
  const key = `${api}/${state.job ?? ''}`;
  const pre = $('logs');
  if (state.log.key !== key) {
    state.log = { key, offset: -LOG_TAIL_BYTES };
    pre.textContent = '';
  }
  $('logs-title').textContent = state.job ? `Recent logs of job ${state.job}` : 'Recent logs';
  const { text, next } = await state.operator.logs(api, state.log.offset, state.job);
  if (state.log.key !== key) return;  // another API was selected meanwhile
  const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  // A log that was rotated starts over from its new beginning (the operator says so by the
  // offset it returns).
  const restarted = state.log.offset >= 0 && next < state.log.offset;
  let shown = (restarted ? '' : pre.textContent) + text;
  if (shown.length > LOG_KEEP_CHARS) shown = shown.slice(shown.length - LOG_KEEP_CHARS);
  if (text || restarted) pre.textContent = shown;
  state.log.offset = next;
  if (follow) pre.scrollTop = pre.scrollHeight;
}

function renderDetail(api, history) {
  const detail = $('detail');
  detail.hidden = !api;
  if (!api) return;
  const kind = api.spec.kind;
  $('detail-title').textContent = `${api.spec.name} (${kind})`;
  const realtime = kind === 'RealtimeAPI';
  $('realtime').hidden = !realtime;
  $('decisions-panel').hidden = !realtime;
  $('jobs-panel').hidden = kind !== 'BatchAPI';
  if (realtime && history) {
    state.charts ??= new ApiCharts();
    state.charts.update(history, Number($('window').value));
    renderDecisions(history);
  }
  if (kind === 'BatchAPI') renderJobs(api);
}

async function tick() {
  clearTimeout(state.timer);
  try {
    const apis = await state.operator.apis();
    apis.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
    const realtime = apis.filter((a) => a.spec.kind === 'RealtimeAPI');
    const histories = new Map(await Promise.all(realtime.map(async (a) => {
      try {
        return [a.spec.name, await state.operator.history(a.spec.name)];
      } catch (e) {
        if (e instanceof OperatorError && e.status === 404) return [a.spec.name, null];  // deleted
        throw e;
      }
    })));
    renderApis(apis, histories);
    const api = apis.find((a) => a.spec.name === state.selected);
    renderDetail(api, histories.get(state.selected));
    if (api && api.spec.kind !== 'TrafficSplitter') await renderLogs(api.spec.name);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
    showBanner('');
  } catch (e) {
    if (e instanceof OperatorError && e.status === 401) {
      forgetToken();
      login('The operator refused the token; paste the current one.');
      return;
    }
    showBanner(`${e.message}; showing the last data, retrying`);
  }
  state.timer = setTimeout(tick, POLL_MS);
}

function select(name) {
  state.selected = name;
  state.job = null;
  history.replaceState(null, '', `?api=${encodeURIComponent(name)}`);
  tick();
}

function login(message) {
  $('main').hidden = true;
  $('login').hidden = false;
  showBanner(message ?? '');
}

async function start(token) {
  state.operator = new Operator(token);
  $('login').hidden = true;
  $('main').hidden = false;
  try {
    const info = await state.operator.info();
    $('cluster').textContent = `cluster ${info.version}`;
  } catch (_) { /* tick() reports it */ }
  tick();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  saveToken(token);
  start(token);
});
$('window').addEventListener('change', () => tick());

const token = takeToken();
if (token) start(token); else login();
