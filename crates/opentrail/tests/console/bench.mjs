// Times the console's first page of results in headless Chromium: from the start of the navigation
// (performance.timeOrigin) to the first row of the results table in the DOM, taken in the page itself by a
// MutationObserver installed before any of the page's scripts. Signed in once; each round a fresh navigation (the HTML shell and modules
// revalidated by ETag, as a reload does). Prints one line per page: median, p95, max over ROUNDS.
import { chromium } from 'playwright-core';

const URL_ = process.env.OPENTRAIL_URL;
const ROUNDS = Number(process.env.ROUNDS || 20);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
// In every page, from its first byte: the time (since the navigation started) the first result row entered the DOM.
await page.addInitScript(() => {
  const seen = () => document.querySelector('table.events tbody tr, p.empty');
  new MutationObserver((_, obs) => {
    if (window.__firstRow === undefined && seen()) { window.__firstRow = performance.now(); obs.disconnect(); }
  }).observe(document, { childList: true, subtree: true });
});
await page.goto(`${URL_}/`);
await page.getByLabel('Access key ID', { exact: true }).fill(process.env.ADMIN_KEY);
await page.getByLabel('Secret access key', { exact: true }).fill(process.env.ADMIN_SECRET);
await page.getByRole('button', { name: 'Sign in' }).first().click();
await page.locator('table.events tbody tr').first().waitFor({ timeout: 60000 });

const pages = {
  'newest events, no filter': '/events',
  'EventName=DescribeInstances (~4% of events)': '/events?EventName=DescribeInstances',
  'Username + EventSource (two filters)': '/events?Username=william.nguyen&EventSource=ec2.amazonaws.com',
  'last day (time preset)': '/events?range=1d',
};
const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
for (const [name, path] of Object.entries(pages)) {
  const times = [];
  const parts = [];
  let rows = 0;
  for (let i = 0; i < ROUNDS; i++) {
    await page.goto(`${URL_}${path}`, { waitUntil: 'commit' });
    await page.locator('table.events tbody tr, p.empty').first().waitFor({ timeout: 60000 });
    const t = await page.evaluate(() => {
      const r = performance.getEntriesByType('resource');
      const end = (part) => r.find((e) => e.name.includes(part))?.responseEnd ?? NaN;
      const call = r.find((e) => e.name.includes('/call/LookupEvents'));
      return { row: window.__firstRow, session: end('/console/api/session'), lookupEnd: call?.responseEnd, lookup: call ? call.responseEnd - call.requestStart : NaN };
    });
    times.push(t.row);
    parts.push(t);
    rows = await page.locator('table.events tbody tr').count();
  }
  times.sort((a, b) => a - b);
  const med = (k) => { const xs = parts.map((p) => p[k]).sort((a, b) => a - b); return q(xs, 0.5).toFixed(0); };
  console.log(`${name.padEnd(44)} rows ${String(rows).padStart(3)}  median ${q(times, 0.5).toFixed(0)} ms  p95 ${q(times, 0.95).toFixed(0)} ms  max ${times[times.length - 1].toFixed(0)} ms  (${ROUNDS} rounds; medians: session answered ${med('session')} ms, LookupEvents ${med('lookup')} ms, answered ${med('lookupEnd')} ms)`);
}
await browser.close();
