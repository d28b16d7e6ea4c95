// The console in headless Chromium, clicking as a person would. Started by crates/opentrail/tests/it/console.rs
// with a running server (seed case and generated traffic ingested, a trail, an Insight) and its keys in env.
// Each step prints `ok <name>`; the first failure prints the step, the page's address and text, and exits 1.
// Screenshots of each page go to $SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const URL_ = env('OPENTRAIL_URL');
const SHORT_URL = env('OPENTRAIL_SHORT_URL');
const SHOTS = env('SCREENSHOT_DIR');
const SEED_ID = env('SEED_EVENT_ID');
const PAGED = env('PAGED_EVENT_NAME');
const TIMEOUT = 15000;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
let page; let current = '';

async function step(name, f) {
  current = name;
  await f();
  console.log(`ok ${name}`);
}

async function newPage(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US', ...opts });
  const p = await ctx.newPage();
  p.setDefaultTimeout(TIMEOUT);
  p.on('pageerror', (e) => { console.error(`page error: ${e.message}`); process.exitCode = 1; });
  p.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) console.error(`console error: ${m.text()}`); });
  return p;
}

const shot = (name, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

async function signInWithKeys(p, base, key, secret) {
  await p.goto(`${base}/`);
  await p.getByLabel('Access key ID', { exact: true }).fill(key);
  await p.getByLabel('Secret access key', { exact: true }).fill(secret);
  await p.getByRole('button', { name: /sign in|masuk/i }).first().click();
}

const rows = (p) => p.locator('table.events tbody tr');

try {
  page = await newPage();

  await step('the sign-in page has the two labelled fields and the security headers', async () => {
    const resp = await page.goto(`${URL_}/`);
    const h = resp.headers();
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.ok(h['referrer-policy']);
    await page.getByLabel('Access key ID', { exact: true }).waitFor();
    await page.getByLabel('Secret access key', { exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/signin');
    await shot('signin');
  });

  await step('a wrong secret is refused with a message', async () => {
    await signInWithKeys(page, URL_, env('ADMIN_KEY'), 'not-the-secret-at-all-000000');
    await page.locator('#signin-error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#signin-error').innerText(), /wrong/);
    assert.equal(new URL(page.url()).pathname, '/signin');
  });

  await step('a writer cannot sign in to read', async () => {
    await signInWithKeys(page, URL_, env('WRITER_KEY'), env('WRITER_SECRET'));
    await page.locator('#signin-error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#signin-error').innerText(), /cannot read/);
  });

  await step('sign in with keys lands on the event history, newest first', async () => {
    await signInWithKeys(page, URL_, env('ADMIN_KEY'), env('ADMIN_SECRET'));
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    await rows(page).first().waitFor();
    const times = await page.locator('td[data-col="eventTime"]').allInnerTexts();
    assert.ok(times.length > 1);
    assert.deepEqual([...times].sort().reverse(), times, 'newest first');
    await page.locator('svg.chart .bar').first().waitFor();
    await shot('events');
  });

  await step('the seed case by clicking: filter on CreateUser, open the record', async () => {
    await page.locator('.filter-row select').first().selectOption('EventName');
    await page.locator('.filter-row input').first().fill('CreateUser');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/EventName=CreateUser/);
    await page.locator('tr[data-event-id="' + SEED_ID + '"]').waitFor();
    await page.locator('tr[data-event-id="' + SEED_ID + '"] a.event-name').click();
    await page.waitForURL(new RegExp(`/events/${SEED_ID}$`));
    await page.getByRole('heading', { name: /CreateUser/ }).waitFor();
    const who = await page.locator('#who').innerText();
    assert.match(who, /John/);
    assert.match(who, /arn:aws:iam::123456789012:user\/John/);
    assert.match(await page.locator('#what').innerText(), /Mary/);
    assert.match(await page.locator('#how').innerText(), /AWS Management Console/);
    assert.match(await page.locator('#where').innerText(), /198\.51\.100\.23/);
    assert.match(await page.locator('#when').innerText(), /2020-01-01T09:00:00/);
    await shot('event-detail');
  });

  await step('the JSON view shows the whole record', async () => {
    await page.getByRole('button', { name: 'Show the JSON' }).click();
    const json = JSON.parse(await page.locator('#event-json').innerText());
    assert.equal(json.eventID, SEED_ID);
    assert.equal(json.requestParameters.userName, 'Mary');
    await shot('event-json');
  });

  await step('a value link filters on it: John -> all of John\'s events', async () => {
    await page.locator('#who a.value-link', { hasText: 'John' }).first().click();
    await page.waitForURL(/\/events\?Username=John$/);
    await rows(page).first().waitFor();
    const users = await page.locator('td[data-col="username"]').allInnerTexts();
    assert.ok(users.length >= 1 && users.every((u) => u === 'John'), users.join(','));
  });

  await step('the seed case by URL, with two filters at once', async () => {
    await page.goto(`${URL_}/events?EventName=CreateUser&Username=John`);
    await rows(page).first().waitFor();
    assert.equal(await rows(page).count(), 1);
    assert.equal(await rows(page).first().getAttribute('data-event-id'), SEED_ID);
    // Both filters are shown in the form, ready to change.
    assert.equal(await page.locator('.filter-row').count(), 2);
  });

  await step('two filters combined in the form', async () => {
    await page.goto(`${URL_}/events`);
    await page.locator('.filter-row input').first().fill(PAGED);
    await page.getByRole('button', { name: 'Add filter' }).click();
    await page.locator('.filter-row select').nth(1).selectOption('Username');
    await page.locator('.filter-row input').nth(1).fill('Audrey');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/Username=Audrey/);
    await page.locator('p.empty, table.events').first().waitFor();
    // Audrey made none of the generated calls: the AND of the two leaves nothing.
    assert.equal(await rows(page).count(), 0);
  });

  await step('page forward and back', async () => {
    await page.goto(`${URL_}/events?EventName=${PAGED}`);
    await rows(page).first().waitFor();
    assert.equal(await rows(page).count(), 50);
    const first = await rows(page).first().getAttribute('data-event-id');
    await page.locator('#next-page').click();
    await page.getByText('Page 2').waitFor();
    const second = await rows(page).first().getAttribute('data-event-id');
    assert.notEqual(second, first);
    await page.locator('#next-page').click();
    await page.getByText('Page 3').waitFor();
    assert.ok((await rows(page).count()) >= 1);
    assert.ok(await page.locator('#next-page').isDisabled(), 'the last page has no next');
    await page.locator('#prev-page').click();
    await page.getByText('Page 2').waitFor();
    assert.equal(await rows(page).first().getAttribute('data-event-id'), second);
    await page.locator('#prev-page').click();
    await page.getByText('Page 1').waitFor();
    assert.equal(await rows(page).first().getAttribute('data-event-id'), first);
  });

  await step('a preset range pages forward', async () => {
    await page.goto(`${URL_}/events?EventName=${PAGED}&range=1d`);
    await rows(page).first().waitFor();
    const first = await rows(page).first().getAttribute('data-event-id');
    await page.locator('#next-page').click();
    await page.getByText('Page 2').waitFor();
    await rows(page).first().waitFor();
    assert.notEqual(await rows(page).first().getAttribute('data-event-id'), first);
  });

  await step('the chart zooms into a bar', async () => {
    await page.goto(`${URL_}/events?EventName=${PAGED}&range=7d`);
    await page.locator('svg.chart .bar').first().waitFor();
    const bars = page.locator('svg.chart .bar');
    assert.equal(await bars.count(), 48);
    const full = page.locator('svg.chart .bar:not([data-count="0"])').first();
    await full.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/start=.*end=/);
    await rows(page).first().waitFor();
  });

  await step('the column chooser is remembered', async () => {
    await page.getByText('Columns').click();
    await page.getByLabel('Region').check();
    await page.locator('th', { hasText: 'Region' }).waitFor();
    await page.reload();
    await page.locator('th', { hasText: 'Region' }).waitFor();
  });

  await step('bad input gets a clear message', async () => {
    await page.goto(`${URL_}/events?Colour=red`);
    assert.match(await page.getByRole('alert').innerText(), /"Colour" is not a lookup attribute/);
    await page.goto(`${URL_}/events?start=2024-02-01T00:00:00Z&end=2024-01-01T00:00:00Z`);
    assert.match(await page.getByRole('alert').innerText(), /impossible/);
    await page.goto(`${URL_}/events/no-such-event`);
    assert.match(await page.getByRole('alert').innerText(), /No event has the ID/);
  });

  await step('trails: status, selectors, and stop/start for an admin', async () => {
    await page.goto(`${URL_}/trails`);
    const card = page.locator('section.trail').first();
    await card.getByText('Logging', { exact: true }).waitFor();
    await shot('trails');
    await card.getByRole('button', { name: 'Stop logging' }).click();
    await card.getByText('Not logging', { exact: true }).waitFor();
    await card.getByRole('button', { name: 'Start logging' }).click();
    await card.getByText('Logging', { exact: true }).waitFor();
  });

  await step('insights: the rate against its baseline, attributions, a link to the events', async () => {
    await page.goto(`${URL_}/insights`);
    const card = page.locator('section.insight').first();
    await card.locator('svg.chart line.baseline').waitFor({ state: 'attached' });
    assert.match(await card.innerText(), /ApiCallRateInsight/);
    assert.match(await card.innerText(), /userIdentityArn/);
    await shot('insights');
    await card.getByRole('link', { name: 'View the events' }).click();
    await page.waitForURL(/EventSource=.*EventName=.*start=/);
    await rows(page).first().waitFor();
  });

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Access key ID', { exact: true }).waitFor();
    await page.goto(`${URL_}/events`);
    await page.getByLabel('Access key ID', { exact: true }).waitFor();
  });

  await step('an auditor sees no write controls', async () => {
    await signInWithKeys(page, URL_, env('AUDITOR_KEY'), env('AUDITOR_SECRET'));
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    await page.goto(`${URL_}/trails`);
    await page.locator('section.trail dl').first().waitFor();
    assert.equal(await page.getByRole('button', { name: /logging/i }).count(), 0);
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  await step('a console user signs in with a password', async () => {
    await page.goto(`${URL_}/`);
    await page.getByRole('tab', { name: 'Console user' }).click();
    await page.getByLabel('User name').fill(env('CONSOLE_USER'));
    await page.getByLabel('Password').fill(env('CONSOLE_PASSWORD'));
    await page.locator('#signin-user button[type=submit]').click();
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    assert.match(await page.locator('#signed-in-as').innerText(), new RegExp(env('CONSOLE_USER')));
  });

  await step('Bahasa Indonesia from the browser, switchable and remembered', async () => {
    page = await newPage({ locale: 'id-ID', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await signInWithKeys(page, URL_, env('ADMIN_KEY'), env('ADMIN_SECRET'));
    await page.getByRole('heading', { name: 'Riwayat peristiwa' }).waitFor();
    await rows(page).first().waitFor();
    await shot('events-id-phone', false);
    await page.locator('#language').selectOption('en');
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    await page.locator('#language').selectOption('id');
    await page.getByRole('heading', { name: 'Riwayat peristiwa' }).waitFor();
  });

  await step('the session expires and the console says so', async () => {
    page = await newPage();
    await signInWithKeys(page, SHORT_URL, env('ADMIN_KEY'), env('ADMIN_SECRET'));
    await page.getByRole('heading', { name: 'Event history' }).waitFor();
    // The short server's sessions live 2 seconds.
    await page.waitForTimeout(3000);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#signin-notice').waitFor();
    assert.match(await page.locator('#signin-notice').innerText(), /expired/);
    await page.getByLabel('Access key ID', { exact: true }).waitFor();
  });
  await browser.close();
  console.log('console browser tests: all passed');
} catch (e) {
  console.error(`FAILED at "${current}": ${e.stack || e}`);
  try {
    console.error(`address: ${page.url()}`);
    console.error(`page text:\n${(await page.locator('body').innerText()).slice(0, 3000)}`);
    await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
  } catch { /* nothing more to say */ }
  await browser.close();
  process.exit(1);
}
