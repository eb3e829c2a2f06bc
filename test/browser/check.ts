/**
 * npm run check:browser: opens the HTML reports of a passing run and of a failing one in the
 * system's Chromium (Debian package "chromium"), headless, from file:// URLs, and checks that
 * they work offline: no console error, no failed request, the key parts present, and the
 * slider redraws the chunk maps. Screenshots go to runs/browser/.
 *
 * Installs nothing: set CHROMIUM to a browser binary if it is not /usr/bin/chromium.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = resolve(ROOT, 'runs/browser');
const BROWSER = process.env.CHROMIUM ?? '/usr/bin/chromium';

function fail(msg: string): never {
  process.stderr.write(`check:browser: ${msg}\n`);
  process.exit(1);
}

/** Runs the CLI and returns its exit status; the page is what matters here. */
function cli(args: string[]): number {
  const r = spawnSync(process.execPath, [resolve(ROOT, 'bin/percpu-sim.mjs'), ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) fail(`percpu-sim ${args.join(' ')}: ${r.error.message}`);
  return r.status ?? -1;
}

interface PageCase {
  name: string;
  args: string[];
  status: number;
  verdict: RegExp;
  violations: boolean;
  /** the machine's CPUs: one row each in the CPU table */
  cpus: number;
}

const CASES: PageCase[] = [
  {
    name: 'demo',
    args: ['run', 'demo', '--seed', '1', '--cpus', '4', '--nodes', '2'],
    status: 0,
    verdict: /^PASS$/,
    violations: false,
    cpus: 4,
  },
  {
    // two-digit CPUs and units: the longest text a unit box holds
    name: 'wide',
    args: ['run', 'counter', '--seed', '2', '--cpus', '12', '--nodes', '2', '--arg', 'adds=100'],
    status: 0,
    verdict: /^PASS$/,
    violations: false,
    cpus: 12,
  },
  {
    name: 'stress',
    args: ['stress', '--seed', '2', '--ops', '100'],
    status: 0,
    verdict: /^CLEAN$/,
    violations: false,
    cpus: 3,
  },
  {
    name: 'failing',
    args: ['stress', '--seed', '1', '--ops', '200', '--mutant', 'populate-no-zero'],
    status: 1,
    verdict: /^VIOLATION$/,
    violations: true,
    cpus: 3,
  },
];

/**
 * Runs in the page: what is drawn where it cannot be read. Every text of a unit box inside
 * its box, every chunk label left of the bars, every text of the counters chart and of a
 * close-up inside its picture, no word of the rerun command split across lines, no part of
 * the page wider than the window, the boot lines before the percpu_stats dump.
 */
const LAYOUT_PROBLEMS = `(() => {
  const out = [];
  const inside = (inner, outer, slack = 0.5) =>
    inner.left >= outer.left - slack &&
    inner.right <= outer.right + slack &&
    inner.top >= outer.top - slack &&
    inner.bottom <= outer.bottom + slack;
  for (const unit of document.querySelectorAll('#layout-svg .unit')) {
    const box = unit.querySelector('rect').getBoundingClientRect();
    for (const t of unit.querySelectorAll('text'))
      if (t.textContent && !inside(t.getBoundingClientRect(), box))
        out.push(\`unit box of CPU \${unit.getAttribute('data-cpu')} clips "\${t.textContent}"\`);
  }
  const bars = document.querySelector('#maps svg rect');
  if (bars) {
    const left = bars.getBoundingClientRect().left;
    for (const t of document.querySelectorAll('#maps svg text'))
      if (t.getBoundingClientRect().right > left && !/not drawn/.test(t.textContent || ''))
        out.push(\`chunk-map label "\${t.textContent}" runs under the bars\`);
  }
  for (const svg of document.querySelectorAll('#counters-svg, svg.zoom, #layout-svg')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text'))
      if (!inside(t.getBoundingClientRect(), box)) out.push(\`"\${t.textContent}" is cut off at the edge of its picture\`);
  }
  const legend = [...document.querySelectorAll('#layout-svg .legend-item text')].map((t) => t.textContent);
  if (!legend.some((t) => t && t.startsWith('static')) || !legend.some((t) => t && t.startsWith('dynamic')))
    out.push(\`the unit bar's legend is missing (\${JSON.stringify(legend)})\`);
  const replay = document.querySelector('#replay');
  if (replay) {
    const range = document.createRange();
    const walk = document.createTreeWalker(replay, NodeFilter.SHOW_TEXT);
    for (let text = walk.nextNode(); text; text = walk.nextNode())
      for (const m of (text.textContent || '').matchAll(/\\S+/g)) {
        range.setStart(text, m.index);
        range.setEnd(text, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) out.push(\`the rerun command breaks inside "\${m[0]}"\`);
      }
  }
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth)
    out.push(\`the page is \${root.scrollWidth} px wide in a \${root.clientWidth} px window\`);
  const boot = document.querySelector('#boot');
  const stats = document.querySelector('#stats');
  if (boot && stats && boot.compareDocumentPosition(stats) & Node.DOCUMENT_POSITION_PRECEDING)
    out.push('the boot lines come after the percpu_stats dump');
  return out;
})()`;

async function main(): Promise<void> {
  if (!existsSync(BROWSER))
    fail(`no browser at ${BROWSER}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: BROWSER,
    headless: true,
    // a closed network: no background connections, no sandbox when run as root in CI
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
  const problems: string[] = [];
  try {
    for (const c of CASES) {
      const html = resolve(OUT, `${c.name}.html`);
      const status = cli([...c.args, '--html', html]);
      if (status !== c.status)
        problems.push(`${c.name}: percpu-sim ${c.args.join(' ')} exited ${status}, expected ${c.status}`);
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.setDefaultTimeout(15_000);
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
      page.on(
        'request',
        (r) =>
          !r.url().startsWith('file:') && !r.url().startsWith('data:') && errors.push(`network request: ${r.url()}`),
      );
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });

      const text = async (sel: string): Promise<string> =>
        ((await page.locator(sel).first().textContent()) ?? '').trim();
      const verdict = await text('#verdict-label');
      if (!c.verdict.test(verdict)) problems.push(`${c.name}: verdict "${verdict}", expected ${c.verdict}`);
      if (!/^\d+$/.test(await text('#seed'))) problems.push(`${c.name}: no seed in the verdict`);
      if (!(await text('#replay')).startsWith('percpu-sim ')) problems.push(`${c.name}: no replay command`);
      const units = await page.locator('#layout-svg .unit').count();
      if (units < 1) problems.push(`${c.name}: the boot layout draws no units`);
      const rows = await page.locator('#cpus tbody tr').count();
      if (rows !== c.cpus) problems.push(`${c.name}: ${rows} CPU row(s) for ${c.cpus} CPUs`);
      problems.push(...(await page.evaluate<string[]>(LAYOUT_PROBLEMS)).map((p) => `${c.name}: ${p}`));
      if (!(await text('#stats')).startsWith('Percpu Memory Statistics'))
        problems.push(`${c.name}: no percpu_stats dump`);
      // a stress run draws its concurrency coverage as a heat map of kernel function x kernel function
      if (c.args[0] === 'stress') {
        const cells = await page.locator('#coverage-heat tbody td').count();
        if (cells !== 81) problems.push(`${c.name}: the coverage heat map has ${cells} cells, not 9 x 9`);
        const shaded = await page.locator('#coverage-heat tbody td:not(:empty)').count();
        if (!c.violations && shaded < 1) problems.push(`${c.name}: the coverage heat map shows no overlap`);
      }
      const violations = await page.locator('.violation').count();
      if (c.violations !== violations > 0) problems.push(`${c.name}: ${violations} violation block(s) shown`);
      if (c.violations && (await page.locator('.violation pre.around').count()) < 1)
        problems.push(`${c.name}: no events around the violation`);

      // the slider: moving it redraws the maps, and some frame differs from the first
      const maps = page.locator('#maps');
      const slider = page.locator('#frame');
      const max = Number(await slider.getAttribute('max'));
      if (max < 1) problems.push(`${c.name}: only ${max + 1} frame(s) to slide over`);
      await slider.focus();
      await page.keyboard.press('Home');
      if ((await maps.getAttribute('data-frame')) !== '0')
        problems.push(`${c.name}: Home did not move the slider to the first frame`);
      const first = await maps.innerHTML();
      if (!first.includes('<rect')) problems.push(`${c.name}: the first frame draws nothing`);
      const seen = new Set<string>([first]);
      for (let i = 0; i < 12; i++) {
        await page.keyboard.press('PageUp');
        seen.add(await maps.innerHTML());
      }
      if (Number(await maps.getAttribute('data-frame')) === 0)
        problems.push(`${c.name}: PageUp did not move the slider`);
      if (seen.size < 2) problems.push(`${c.name}: the slider does not change the drawn map`);
      await page.keyboard.press('End');
      problems.push(
        ...(await page.evaluate<string[]>(LAYOUT_PROBLEMS)).map((p) => `${c.name} (first frame drawn): ${p}`),
      );
      await page.screenshot({ path: resolve(OUT, `${c.name}.png`), fullPage: true });
      problems.push(...errors.map((e) => `${c.name}: ${e}`));
      process.stdout.write(
        `check:browser: ${c.name}: verdict ${verdict}, ${units} unit(s), ${rows} CPU row(s), ${max + 1} frame(s) (${seen.size} distinct drawn), ${violations} violation(s); screenshot ${resolve(OUT, `${c.name}.png`)}\n`,
      );
      await page.close();
    }
  } finally {
    await browser.close();
  }
  if (problems.length) fail(`\n  ${problems.join('\n  ')}`);
  process.stdout.write(`check:browser: all ${CASES.length} pages work offline in Chromium\n`);
}

const timer = setTimeout(() => fail('timed out after 5 minutes'), 300_000);
timer.unref();
main().catch((e: Error) => fail(e.stack ?? e.message));
