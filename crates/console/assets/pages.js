// Sign-in, Trails and Insights.
import { ApiError, call, counts, currentSession, signIn } from './api.js';
import { barChart } from './chart.js';
import { append, h, link, clear } from './dom.js';
import { t } from './i18n.js';

function iso(ms) { return new Date(ms).toISOString().replace('.000Z', 'Z'); }

export function renderSignIn(main, { notice, onSignedIn }) {
  clear(main);
  const msg = h('div', { class: 'error', role: 'alert', id: 'signin-error' });
  msg.hidden = true;
  const field = (id, label, type, autocomplete) => h('p', {}, h('label', { for: id }, label),
    h('input', { id, name: id, type, autocomplete, required: true, spellcheck: 'false' }));
  const keys = h('form', { class: 'signin', id: 'signin-keys' },
    field('access-key-id', t('signin.accessKeyId'), 'text', 'username'),
    field('secret-access-key', t('signin.secretAccessKey'), 'password', 'current-password'),
    h('button', { type: 'submit', class: 'primary' }, t('signin.submit')));
  const user = h('form', { class: 'signin', id: 'signin-user' },
    field('console-user', t('signin.user'), 'text', 'username'),
    field('console-password', t('signin.password'), 'password', 'current-password'),
    h('button', { type: 'submit', class: 'primary' }, t('signin.submit')));
  user.hidden = true;
  const tabKeys = h('button', { type: 'button', role: 'tab', 'aria-selected': 'true', id: 'tab-keys' }, t('signin.withKeys'));
  const tabUser = h('button', { type: 'button', role: 'tab', 'aria-selected': 'false', id: 'tab-user' }, t('signin.withUser'));
  const choose = (useKeys) => {
    keys.hidden = !useKeys; user.hidden = useKeys;
    tabKeys.setAttribute('aria-selected', String(useKeys)); tabUser.setAttribute('aria-selected', String(!useKeys));
  };
  tabKeys.addEventListener('click', () => choose(true));
  tabUser.addEventListener('click', () => choose(false));
  const submit = (form, body) => form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.hidden = true;
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await signIn(body());
      onSignedIn();
    } catch (err) {
      msg.textContent = t('signin.wrong', { message: err.message });
      msg.hidden = false;
      button.disabled = false;
    }
  });
  submit(keys, () => ({ accessKeyId: keys.querySelector('#access-key-id').value.trim(), secretAccessKey: keys.querySelector('#secret-access-key').value }));
  submit(user, () => ({ user: user.querySelector('#console-user').value.trim(), password: user.querySelector('#console-password').value }));
  const box = h('div', { class: 'signin-box card' }, h('h1', {}, t('signin.title')),
    notice ? h('div', { class: 'notice', role: 'status', id: 'signin-notice' }, notice) : null,
    h('div', { role: 'tablist', class: 'tabs' }, tabKeys, tabUser), msg, keys, user);
  main.append(box);
  keys.querySelector('input').focus();
}

const when = (v) => (v ? iso(typeof v === 'number' ? v * 1000 : Date.parse(v)) : t('trails.never'));

export async function renderTrails(main) {
  clear(main).append(h('h1', {}, t('trails.title')), h('p', { class: 'loading' }, '…'));
  let trails;
  try { trails = (await call('DescribeTrails', {})).trailList || []; } catch (e) {
    clear(main).append(h('h1', {}, t('trails.title')), h('div', { class: 'error', role: 'alert' }, t('error.generic', { message: e.message })));
    return;
  }
  clear(main).append(h('h1', {}, t('trails.title')));
  if (!trails.length) { main.append(h('p', { class: 'empty' }, t('trails.none'))); return; }
  for (const trail of trails) {
    const card = h('section', { class: 'card trail', 'data-trail': trail.Name });
    main.append(card);
    drawTrail(card, trail);
  }
}

async function drawTrail(card, trail) {
  const name = trail.TrailARN || trail.Name;
  const [status, selectors, insightSel] = await Promise.all([
    call('GetTrailStatus', { Name: name }).catch((e) => ({ error: e.message })),
    call('GetEventSelectors', { TrailName: name }).catch(() => ({})),
    call('GetInsightSelectors', { TrailName: name }).catch(() => ({})),
  ]);
  const canWrite = currentSession()?.canStartStopLogging;
  const logging = status.IsLogging;
  const toggle = canWrite ? h('button', { type: 'button', class: logging ? 'danger' : 'primary', id: `toggle-${trail.Name}`,
    onclick: async (e) => {
      e.target.disabled = true;
      try { await call(logging ? 'StopLogging' : 'StartLogging', { Name: name }); } catch (err) {
        card.append(h('p', { class: 'error', role: 'alert' }, t('error.generic', { message: err.message })));
        return;
      }
      clear(card); drawTrail(card, trail);
    } }, logging ? t('trails.stop') : t('trails.start')) : null;
  const sel = selectors.AdvancedEventSelectors?.length ? selectors.AdvancedEventSelectors : selectors.EventSelectors;
  const ins = (insightSel.InsightSelectors || []).map((s) => s.InsightType).join(', ');
  append(clear(card), [
    h('h2', {}, trail.Name, ' ', h('span', { class: `badge ${logging ? 'on' : 'off'}` }, logging ? t('trails.logging') : t('trails.notLogging'))),
    status.error ? h('p', { class: 'error' }, status.error) : null,
    h('dl', {},
      h('dt', {}, 'ARN'), h('dd', {}, trail.TrailARN || '—'),
      h('dt', {}, t('trails.bucket')), h('dd', {}, trail.S3BucketName || '—'),
      h('dt', {}, t('trails.multiRegion')), h('dd', {}, trail.IsMultiRegionTrail ? t('yes') : t('no')),
      h('dt', {}, t('trails.validation')), h('dd', {}, trail.LogFileValidationEnabled ? t('yes') : t('no')),
      h('dt', {}, t('trails.latestDelivery')), h('dd', {}, when(status.LatestDeliveryTime)),
      h('dt', {}, t('trails.latestDigest')), h('dd', {}, when(status.LatestDigestDeliveryTime)),
      h('dt', {}, t('trails.deliveryError')), h('dd', { class: status.LatestDeliveryError ? 'error-code' : '' }, status.LatestDeliveryError || t('trails.noneSet')),
      h('dt', {}, t('trails.digestError')), h('dd', { class: status.LatestDigestDeliveryError ? 'error-code' : '' }, status.LatestDigestDeliveryError || t('trails.noneSet')),
      h('dt', {}, t('trails.selectors')), h('dd', {}, sel ? h('pre', { class: 'json small' }, JSON.stringify(sel, null, 2)) : t('trails.noneSet')),
      h('dt', {}, t('trails.insightSelectors')), h('dd', {}, ins || t('trails.noneSet'))),
    toggle]);
}

export async function renderInsights(main) {
  clear(main).append(h('h1', {}, t('insights.title')), h('p', { class: 'loading' }, '…'));
  let events = [];
  try {
    let token;
    do { // every Insights event (they are few)
      const page = await call('LookupEvents', { EventCategory: 'insight', MaxResults: 50, ...(token ? { NextToken: token } : {}) });
      events = events.concat(page.Events || []);
      token = page.NextToken;
    } while (token && events.length < 500);
  } catch (e) {
    clear(main).append(h('h1', {}, t('insights.title')), h('div', { class: 'error', role: 'alert' }, t('error.generic', { message: e.message })));
    return;
  }
  clear(main).append(h('h1', {}, t('insights.title')));
  const byId = new Map();
  for (const ev of events) {
    let rec; try { rec = JSON.parse(ev.CloudTrailEvent); } catch { continue; }
    const id = rec.sharedEventID || ev.EventId;
    const it = byId.get(id) || {};
    it[rec.insightDetails?.state === 'End' ? 'end' : 'start'] = rec;
    byId.set(id, it);
  }
  const insights = [...byId.values()].filter((i) => i.start).sort((a, b) => Date.parse(b.start.eventTime) - Date.parse(a.start.eventTime));
  if (!insights.length) { main.append(h('p', { class: 'empty' }, t('insights.none'))); return; }
  for (const i of insights) {
    const card = h('section', { class: 'card insight', 'data-insight': i.start.sharedEventID });
    main.append(card);
    drawInsight(card, i);
  }
}

async function drawInsight(card, { start, end }) {
  const d = start.insightDetails || {};
  const stats = (end || start).insightDetails?.insightContext?.statistics || d.insightContext?.statistics || {};
  const from = Date.parse(start.eventTime);
  const to = end ? Date.parse(end.eventTime) : Date.now();
  const dur = Math.max(to - from, 5 * 60e3);
  const chartStart = from - 2 * dur, chartEnd = Math.min(to + dur, Date.now());
  const api = `${d.eventSource} ${d.eventName}`;
  const eventsHref = `/events?${new URLSearchParams([['EventSource', d.eventSource], ['EventName', d.eventName], ['start', iso(from)], ['end', iso(to)]]).toString()}`;
  card.append(h('h2', {}, api, ' ', h('span', { class: 'badge' }, d.insightType || '')),
    h('dl', {},
      h('dt', {}, t('insights.type')), h('dd', {}, d.insightType, d.errorCode ? ` (${d.errorCode})` : ''),
      h('dt', {}, t('insights.window')), h('dd', {}, iso(from), ' → ', end ? iso(to) : t('insights.ongoing')),
      h('dt', {}, t('insights.rate')), h('dd', {}, String(stats.insight?.average ?? '—')),
      h('dt', {}, t('insights.baselineRate')), h('dd', {}, String(stats.baseline?.average ?? '—'))));
  const chartBox = h('div', { class: 'insight-chart' });
  card.append(chartBox);
  const attributions = (d.insightContext?.attributions || (end?.insightDetails?.insightContext?.attributions) || []);
  if (attributions.length) {
    card.append(h('h3', {}, t('insights.attributions')), h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, t('insights.attribute')), h('th', {}, t('insights.inInsight')), h('th', {}, t('insights.inBaseline')))),
      h('tbody', {}, attributions.map((a) => h('tr', {}, h('td', {}, a.attribute),
        h('td', {}, (a.insight || []).map((v) => h('div', {}, `${v.value}: ${v.average}`))),
        h('td', {}, (a.baseline || []).map((v) => h('div', {}, `${v.value}: ${v.average}`)))))))));
  }
  card.append(h('p', {}, link(eventsHref, t('insights.viewEvents'), { class: 'button secondary' })));
  const minutes = Math.max(1, Math.round((chartEnd - chartStart) / 60e3));
  const buckets = Math.min(120, minutes);
  try {
    const c = await counts([['attr', `EventSource=${d.eventSource}`], ['attr', `EventName=${d.eventName}`],
      ['start', iso(chartStart)], ['end', iso(chartEnd)], ['buckets', String(buckets)]]);
    const perBar = (c.IntervalMillis || 60e3) / 60e3;
    const baseline = stats.baseline?.average !== undefined ? stats.baseline.average * perBar : null;
    chartBox.append(barChart(c.Series, { baseline, title: t('insights.chart', { api }) }));
  } catch (e) {
    chartBox.append(h('p', { class: 'error' }, t('error.generic', { message: e.message })));
  }
}

export { ApiError };
