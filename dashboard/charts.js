// The selected API's live charts (Chart.js, only the parts a line chart on a linear time axis
// needs, so that the bundle stays small). Times are unix milliseconds on the x axis.
import {
  Chart, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Filler, Legend, Tooltip);

const COLORS = {
  ok: '#15803d', client: '#b45309', server: '#b91c1c', p50: '#2563eb', p99: '#7c3aed',
  inFlight: '#0891b2', replicas: '#1d2330',
};

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function line(label, color, extra = {}) {
  return {
    label, data: [], borderColor: color, backgroundColor: `${color}22`, borderWidth: 1.5,
    pointRadius: 0, pointHitRadius: 6, spanGaps: false, ...extra,
  };
}

function makeChart(canvas, datasets, yTitle) {
  return new Chart(canvas, {
    type: 'line',
    data: { datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', ticks: { callback: clock, maxTicksLimit: 6 } },
        y: { beginAtZero: true, title: { display: Boolean(yTitle), text: yTitle } },
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12 } },
        tooltip: { callbacks: { title: (items) => (items.length ? clock(items[0].parsed.x) : '') } },
      },
    },
  });
}

export class ApiCharts {
  constructor() {
    this.rate = makeChart(document.getElementById('chart-rate'), [
      line('2xx', COLORS.ok, { fill: 'origin' }),
      line('4xx', COLORS.client),
      line('5xx', COLORS.server),
    ], 'per second');
    this.latency = makeChart(document.getElementById('chart-latency'), [
      line('p50', COLORS.p50),
      line('p99', COLORS.p99),
    ], 'ms');
    this.scale = makeChart(document.getElementById('chart-scale'), [
      line('in flight', COLORS.inFlight, { fill: 'origin' }),
      line('replicas (autoscaler)', COLORS.replicas, { stepped: 'before' }),
    ], '');
  }

  // `history` is GET /v1/apis/{api}/history; the charts show [now - windowS, now].
  update(history, windowS) {
    const now = Date.now();
    const min = now - windowS * 1000;
    const intervals = history.requests.filter((p) => p.time >= min);
    const per = (field) => intervals.map((p) => ({ x: p.time, y: p[field] / p.seconds }));
    const at = (field) => intervals.map((p) => ({ x: p.time, y: p[field] }));
    this.set(this.rate, [per('code_2xx'), per('code_4xx'), per('code_5xx')], min, now);
    // What the rate chart covers, for a reader that cannot see the canvas (and for the tests).
    const sum = (field) => intervals.reduce((total, p) => total + p[field], 0);
    this.rate.canvas.dataset.requests = ['code_2xx', 'code_4xx', 'code_5xx'].map(sum).join(',');
    this.set(this.latency, [at('p50_ms'), at('p99_ms')], min, now);
    const inFlight = history.in_flight
      .filter(([s]) => s * 1000 >= min)
      .map(([s, v]) => ({ x: s * 1000, y: v }));
    const replicas = history.decisions
      .filter((d) => d.time >= min)
      .map((d) => ({ x: d.time, y: d.to }));
    // The current request holds until now.
    if (replicas.length) replicas.push({ x: now, y: history.replicas.requested });
    this.set(this.scale, [inFlight, replicas], min, now);
  }

  set(chart, series, min, max) {
    series.forEach((data, i) => { chart.data.datasets[i].data = data; });
    chart.canvas.dataset.points = series.map((data) => data.length).join(',');
    chart.options.scales.x.min = min;
    chart.options.scales.x.max = max;
    chart.update('none');
  }
}
