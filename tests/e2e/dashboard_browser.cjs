// Drives the dashboard in Debian's Chromium with playwright-core, for tests/e2e/test_dashboard.py:
// one JSON command per line on stdin, one JSON answer per line on stdout. It never downloads a
// browser; CHROMIUM names the executable (default /usr/bin/chromium).
//   {"op": "goto", "url": U}             open U, wait for the page's first update
//   {"op": "read"}                       what the page shows (tables, titles, logs, chart data)
//   {"op": "wait_updates", "n": N}       wait until the page has redrawn N more times
//   {"op": "click", "selector": S}       click the first element S matches
//   {"op": "fill", "selector": S, "value": V}, {"op": "press", "selector": S, "key": K}
//   {"op": "screenshot", "path": P}      the whole page as PNG
//   {"op": "close"}
// Console errors and page errors (a refused script or a policy violation among them) are
// collected and returned by every "read".
const readline = require('readline');
const { chromium } = require('playwright-core');

async function main() {
  const dataDir = require('fs').mkdtempSync(require('path').join(require('os').tmpdir(), 'chromium-'));
  const browser = await chromium.launchPersistentContext(dataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const updates = () => page.evaluate(() => Number(document.body.dataset.updates || 0));

  const ops = {
    async goto({ url }) {
      await page.goto(url);
      await page.waitForFunction(() => Number(document.body.dataset.updates || 0) > 0 ||
        !document.getElementById('login').hidden, null, { timeout: 15000 });
      return { url: page.url() };
    },
    async wait_updates({ n }) {
      const target = (await updates()) + n;
      await page.waitForFunction((t) => Number(document.body.dataset.updates || 0) >= t, target,
        { timeout: 20000 });
      return { updates: await updates() };
    },
    async click({ selector }) { await page.click(selector); return {}; },
    async fill({ selector, value }) { await page.fill(selector, value); return {}; },
    async press({ selector, key }) { await page.press(selector, key); return {}; },
    async screenshot({ path }) { await page.screenshot({ path, fullPage: true }); return {}; },
    async read() {
      const shown = await page.evaluate(() => {
        const rows = (selector, key) => [...document.querySelectorAll(`${selector} tbody tr`)].map((tr) => {
          const row = key ? { [key]: tr.dataset[key] } : {};
          for (const td of tr.querySelectorAll('td[data-field]')) row[td.dataset.field] = td.textContent;
          row.selected = tr.classList.contains('selected');
          return row;
        });
        const visible = (id) => !document.getElementById(id).hidden &&
          document.getElementById(id).offsetParent !== null;
        const canvas = (id) => {
          const c = document.getElementById(id);
          return { points: c.dataset.points || '', requests: c.dataset.requests || '',
            width: c.width, height: c.height };
        };
        return {
          updates: Number(document.body.dataset.updates || 0),
          url: location.href,
          banner: document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent,
          login: !document.getElementById('login').hidden,
          cluster: document.getElementById('cluster').textContent,
          apis: rows('#apis', 'api'),
          detail: visible('detail') ? {
            title: document.getElementById('detail-title').textContent,
            charts: visible('realtime') ? {
              rate: canvas('chart-rate'), latency: canvas('chart-latency'), scale: canvas('chart-scale'),
            } : null,
            decisions: visible('decisions-panel') ? rows('#decisions') : null,
            jobs: visible('jobs-panel') ? rows('#jobs', 'job') : null,
            dead_letters_title: visible('jobs-panel') ? document.getElementById('dead-letters-title').textContent : null,
            dead_letters: visible('jobs-panel') ? rows('#dead-letters') : null,
            logs_title: document.getElementById('logs-title').textContent,
            logs: document.getElementById('logs').textContent,
          } : null,
        };
      });
      return { ...shown, errors: errors.slice() };
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    if (command.op === 'close') break;
    let answer;
    try {
      answer = { ok: true, ...(await ops[command.op](command)) };
    } catch (e) {
      answer = { ok: false, error: String(e && e.stack || e) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
  // Closing waits for the page's last fetches; a browser that does not close in 10 s is killed.
  const timeout = new Promise((resolve) => setTimeout(resolve, 10000, 'timeout'));
  if (await Promise.race([browser.close().then(() => 'closed'), timeout]) === 'timeout') {
    process.stderr.write('the browser did not close in 10 s\n');
    process.exit(2);  // playwright kills the browser it launched when its process exits
  }
  require('fs').rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
