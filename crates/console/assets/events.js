// Event history (filters, time range, activity chart, columns, pages) and event detail. The address is the
// state: /events?EventName=CreateUser&Username=John&start=…&end=… (attribute keys as LookupEvents names
// them; a key given twice is either value), and /events/<eventId>.
import { call, counts } from './api.js';
import { barChart } from './chart.js';
import { h, link, clear } from './dom.js';
import { t } from './i18n.js';

export const ATTRIBUTES = ['EventName', 'Username', 'EventSource', 'ResourceName', 'ResourceType', 'AccessKeyId',
  'ReadOnly', 'EventId', 'SourceIPAddress', 'ErrorCode', 'UserAgent', 'AccountId', 'Provenance'];
const RANGES = { '1h': 3600e3, '1d': 86400e3, '7d': 7 * 86400e3 };
const PAGE_SIZE = 50;
const CHART_BARS = 48;
const COLUMNS = ['eventTime', 'eventName', 'username', 'eventSource', 'resourceType', 'resourceName',
  'sourceIPAddress', 'errorCode', 'accessKeyId', 'readOnly', 'awsRegion', 'how'];
const DEFAULT_COLUMNS = ['eventTime', 'eventName', 'username', 'eventSource', 'resourceName', 'sourceIPAddress', 'errorCode'];
const COLUMNS_KEY = 'opentrail.columns';

export function filterHref(key, value) {
  return `/events?${new URLSearchParams([[key, value]]).toString()}`;
}

export function filterLink(key, value, text) {
  return link(filterHref(key, value), text ?? value, { class: 'value-link', title: `${key} = ${value}` });
}

function iso(ms) { return new Date(ms).toISOString().replace('.000Z', 'Z'); }

// The URL's query → {filters, range, start, end, problems}.
export function parseState(search, now = Date.now()) {
  const params = new URLSearchParams(search);
  const st = { filters: [], range: 'all', start: null, end: null, problems: [] };
  for (const [k, v] of params) {
    if (k === 'start' || k === 'end') {
      const ms = Date.parse(v);
      if (Number.isNaN(ms)) st.problems.push(t('error.badTime', { value: v }));
      else st[k] = ms;
      st.range = 'custom';
    } else if (k === 'range') {
      if (RANGES[v] || v === 'all') { if (st.range !== 'custom') st.range = v; } else st.problems.push(t('error.unknownParam', { key: `range=${v}` }));
    } else if (ATTRIBUTES.includes(k)) {
      if (v !== '') st.filters.push([k, v]);
    } else {
      const known = ATTRIBUTES.find((a) => a.toLowerCase() === k.toLowerCase());
      st.problems.push(t('error.unknownAttribute', { key: k, known: ATTRIBUTES.join(', ') }) + (known ? ` (${known}?)` : ''));
    }
  }
  if (st.start !== null && st.end !== null && st.start > st.end) {
    st.problems.push(t('error.range', { start: iso(st.start), end: iso(st.end) }));
  }
  if (RANGES[st.range]) { st.end = now; st.start = now - RANGES[st.range]; }
  return st;
}

function stateSearch(filters, range, start, end) {
  const p = new URLSearchParams();
  for (const [k, v] of filters) if (v !== '') p.append(k, v);
  if (range === 'custom') {
    if (start !== null && start !== undefined) p.set('start', iso(start));
    if (end !== null && end !== undefined) p.set('end', iso(end));
  } else if (range !== 'all') p.set('range', range);
  const q = p.toString();
  return q ? `/events?${q}` : '/events';
}

function lookupBody(st, token) {
  const body = { MaxResults: PAGE_SIZE, LookupAttributes: st.filters.map(([k, v]) => ({ AttributeKey: k, AttributeValue: v })) };
  if (st.start !== null) body.StartTime = st.start / 1000;
  if (st.end !== null) body.EndTime = st.end / 1000;
  if (token) body.NextToken = token;
  return body;
}

// How the call was made, from its user agent and sessionCredentialFromConsole.
export function how(record) {
  const ua = record.userAgent || '';
  if (record.sessionCredentialFromConsole === 'true' || record.sessionCredentialFromConsole === true
      || /^(AWS Internal|console\.amazonaws\.com|signin\.amazonaws\.com)/.test(ua)) return t('how.console');
  if (/^aws-cli\//.test(ua)) return t('how.cli');
  if (/Terraform/i.test(ua)) return t('how.terraform');
  if (/^(Boto3|botocore)\//.test(ua)) return t('how.sdk', { lang: 'Python' });
  const sdk = ua.match(/aws-sdk-(\w+)/);
  if (sdk) return t('how.sdk', { lang: sdk[1] === 'js' ? 'JavaScript' : sdk[1] });
  if (/^opentrail\//.test(ua)) return t('how.opentrail');
  if (/\.amazonaws\.com$/.test(ua)) return t('how.service');
  if (/^Mozilla\//.test(ua)) return t('how.browser');
  return t('how.other');
}

function chosenColumns() {
  try {
    const c = JSON.parse(localStorage.getItem(COLUMNS_KEY));
    if (Array.isArray(c) && c.every((x) => COLUMNS.includes(x)) && c.length) return c;
  } catch { /* the default */ }
  return DEFAULT_COLUMNS;
}

function cell(col, ev, rec) {
  const res = ev.Resources || [];
  switch (col) {
    case 'eventTime': return link(`/events/${encodeURIComponent(ev.EventId)}`, iso(ev.EventTime * 1000), { class: 'event-link' });
    case 'eventName': return link(`/events/${encodeURIComponent(ev.EventId)}`, ev.EventName || '', { class: 'event-name' });
    case 'username': return ev.Username ? filterLink('Username', ev.Username) : '';
    case 'eventSource': return ev.EventSource ? filterLink('EventSource', ev.EventSource) : '';
    case 'resourceType': return res.map((r) => r.ResourceType).filter(Boolean).join(', ');
    case 'resourceName': return res.map((r) => r.ResourceName).filter(Boolean).join(', ');
    case 'sourceIPAddress': return rec.sourceIPAddress || '';
    case 'errorCode': return rec.errorCode ? h('span', { class: 'error-code' }, rec.errorCode) : '';
    case 'accessKeyId': return ev.AccessKeyId || '';
    case 'readOnly': return ev.ReadOnly === 'true' ? t('yes') : t('no');
    case 'awsRegion': return rec.awsRegion || '';
    case 'how': return how(rec);
    default: return '';
  }
}

// Pages of the current query: the NextToken of each page seen, kept here (not in the address).
let paging = { key: null, tokens: [null], index: 0, now: Date.now() };

export async function renderEvents(main, ctx) {
  const key = location.search;
  // A preset range ends at "now" as of the first page: later pages keep it (a NextToken is tied to its range).
  if (paging.key !== key) paging = { key, tokens: [null], index: 0, now: Date.now() };
  const st = parseState(location.search, paging.now);
  clear(main);
  main.append(h('h1', {}, t('events.title')));
  main.append(filterForm(st, ctx));
  if (st.problems.length) {
    main.append(h('div', { class: 'error', role: 'alert' }, st.problems.map((p) => h('p', {}, p))));
    return;
  }
  const chartBox = h('section', { class: 'activity', 'aria-label': t('chart.title') });
  const tableBox = h('section', { class: 'results', 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('events.loading')));
  main.append(chartBox, columnChooser(() => renderEvents(main, ctx)), tableBox);
  let page;
  try {
    page = await call('LookupEvents', lookupBody(st, paging.tokens[paging.index]));
  } catch (e) {
    clear(tableBox).append(h('div', { class: 'error', role: 'alert' }, t('error.generic', { message: e.message })));
    return;
  }
  if (paging.key !== key) return; // navigated away meanwhile
  const events = page.Events || [];
  if (page.NextToken) paging.tokens[paging.index + 1] = page.NextToken;
  else paging.tokens.length = paging.index + 1;
  clear(tableBox).append(table(events), pager(events, () => renderEvents(main, ctx)));
  drawChart(chartBox, st, events, ctx);
}

function filterForm(st, ctx) {
  const rows = h('div', { class: 'filter-rows' });
  const addRow = (k = 'EventName', v = '') => {
    const sel = h('select', { 'aria-label': t('events.attribute'), class: 'filter-key' },
      ATTRIBUTES.map((a) => h('option', { value: a, selected: a === k }, a)));
    const input = h('input', { type: 'text', value: v, 'aria-label': t('events.value'), class: 'filter-value', placeholder: t('events.value') });
    const row = h('div', { class: 'filter-row' }, sel, input,
      h('button', { type: 'button', class: 'icon', 'aria-label': t('events.removeFilter'), title: t('events.removeFilter'), onclick: () => row.remove() }, '×'));
    rows.append(row);
    return input;
  };
  for (const [k, v] of st.filters) addRow(k, v);
  if (!st.filters.length) addRow();
  const rangeSel = h('select', { id: 'range', 'aria-label': t('events.time') },
    ['all', '1h', '1d', '7d', 'custom'].map((r) => h('option', { value: r, selected: r === st.range }, t(`range.${r}`))));
  const local = (ms) => (ms === null ? '' : iso(ms).slice(0, 16));
  const startIn = h('input', { type: 'datetime-local', id: 'start', value: st.range === 'custom' ? local(st.start) : '', 'aria-label': t('range.start') });
  const endIn = h('input', { type: 'datetime-local', id: 'end', value: st.range === 'custom' ? local(st.end) : '', 'aria-label': t('range.end') });
  const custom = h('span', { class: 'custom-range' }, h('label', {}, t('range.start'), ' ', startIn), ' ', h('label', {}, t('range.end'), ' ', endIn));
  custom.hidden = st.range !== 'custom';
  rangeSel.addEventListener('change', () => { custom.hidden = rangeSel.value !== 'custom'; });
  const form = h('form', { class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const filters = [...rows.querySelectorAll('.filter-row')].map((r) => [r.querySelector('select').value, r.querySelector('input').value.trim()]);
    const asUtc = (v) => (v ? Date.parse(`${v}:00Z`) : null);
    ctx.navigate(stateSearch(filters, rangeSel.value, asUtc(startIn.value), asUtc(endIn.value)));
  } },
  h('fieldset', {}, h('legend', {}, t('events.filters')), rows,
    h('button', { type: 'button', class: 'secondary', onclick: () => addRow().focus() }, t('events.addFilter'))),
  h('fieldset', {}, h('legend', {}, t('events.time')), rangeSel, ' ', custom),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('events.apply')), ' ',
    link('/events', t('events.clear'), { class: 'button secondary' })));
  return form;
}

function columnChooser(redraw) {
  const chosen = chosenColumns();
  return h('details', { class: 'columns' }, h('summary', {}, t('events.columns')),
    h('div', { class: 'column-list' }, COLUMNS.map((c) => h('label', {},
      h('input', { type: 'checkbox', value: c, checked: chosen.includes(c), onchange: (e) => {
        const now = new Set(chosenColumns());
        if (e.target.checked) now.add(c); else now.delete(c);
        const ordered = COLUMNS.filter((x) => now.has(x));
        localStorage.setItem(COLUMNS_KEY, JSON.stringify(ordered.length ? ordered : DEFAULT_COLUMNS));
        redraw();
      } }), ' ', t(`col.${c}`)))));
}

function table(events) {
  if (!events.length) return h('p', { class: 'empty' }, t('events.none'));
  const cols = chosenColumns();
  return h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, t(`col.${c}`))))),
    h('tbody', {}, events.map((ev) => {
      let rec = {};
      try { rec = JSON.parse(ev.CloudTrailEvent || '{}'); } catch { rec = {}; }
      return h('tr', { 'data-event-id': ev.EventId, class: rec.errorCode ? 'failed' : '' },
        cols.map((c) => h('td', { 'data-col': c }, cell(c, ev, rec))));
    }))));
}

function pager(events, redraw) {
  const prev = h('button', { type: 'button', class: 'secondary', id: 'prev-page', disabled: paging.index === 0,
    onclick: () => { paging.index -= 1; redraw(); } }, `← ${t('events.previous')}`);
  const next = h('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: !paging.tokens[paging.index + 1],
    onclick: () => { paging.index += 1; redraw(); } }, `${t('events.next')} →`);
  return h('nav', { class: 'pager', 'aria-label': 'pages' }, prev, h('span', { class: 'page-number' }, t('events.page', { n: paging.index + 1 })), next);
}

async function drawChart(box, st, events, ctx) {
  let start = st.start, end = st.end;
  if (start === null || end === null) {
    const newest = events.length ? events[0].EventTime * 1000 : Date.now();
    end = end ?? Math.max(newest + 1000, start ?? 0);
    start = start ?? end - RANGES['7d'];
  }
  const pairs = st.filters.map(([k, v]) => ['attr', `${k}=${v}`]);
  pairs.push(['start', iso(start)], ['end', iso(end)], ['buckets', String(CHART_BARS)]);
  try {
    const c = await counts(pairs);
    clear(box).append(h('h2', {}, t('chart.title')), h('p', { class: 'muted' }, t('events.count', { n: c.Total, errors: c.Errors })),
      barChart(c.Series, { onSelect: (b) => {
        const p = new URLSearchParams(location.search);
        p.delete('range'); p.set('start', b.Start); p.set('end', b.End);
        ctx.navigate(`/events?${p.toString()}`);
      } }));
  } catch (e) {
    clear(box).append(h('p', { class: 'error' }, t('error.generic', { message: e.message })));
  }
}

// ---- event detail ----

function dl(pairs) {
  return h('dl', {}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null || v === '' ? '—' : v)]));
}

function jsonBlock(v) { return h('pre', { class: 'json small' }, JSON.stringify(v, null, 2)); }

async function findEvent(id) {
  for (const category of [undefined, 'insight']) {
    const body = { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: id }] };
    if (category) body.EventCategory = category;
    const page = await call('LookupEvents', body);
    if (page.Events?.length) return page.Events[0];
  }
  return null;
}

export async function renderEvent(main, id) {
  clear(main).append(h('p', { class: 'loading' }, t('events.loading')));
  let ev;
  try { ev = await findEvent(id); } catch (e) {
    clear(main).append(h('div', { class: 'error', role: 'alert' }, t('error.generic', { message: e.message })));
    return;
  }
  clear(main);
  main.append(h('p', {}, link('/events', `← ${t('detail.back')}`)));
  if (!ev) { main.append(h('div', { class: 'error', role: 'alert' }, t('error.notFound', { id }))); return; }
  let rec = {};
  try { rec = JSON.parse(ev.CloudTrailEvent || '{}'); } catch { rec = {}; }
  const ui = rec.userIdentity || {};
  const sc = ui.sessionContext || {};
  const when = new Date(Date.parse(rec.eventTime || iso(ev.EventTime * 1000)));
  const name = rec.eventName || rec.insightDetails?.eventName || ev.EventName;
  main.append(h('h1', {}, t('detail.title', { name })), h('p', { class: 'muted' }, t('detail.filterHint')));
  const f = (key, v) => (v === undefined || v === null || v === '' ? null : filterLink(key, String(v)));
  const resources = (rec.resources || ev.Resources || []).map((r) => h('div', {},
    f('ResourceType', r.type || r.ResourceType), ' ', f('ResourceName', r.ARN || r.ResourceName)));
  const whenRange = link(stateSearch([], 'custom', when.getTime() - 3600e3, when.getTime() + 3600e3), when.toISOString(), { class: 'value-link' });
  const grid = h('div', { class: 'detail-grid' },
    h('section', { class: 'card', id: 'what' }, h('h2', {}, t('detail.what')), dl([
      [t('detail.eventName'), f('EventName', name)],
      [t('detail.eventSource'), f('EventSource', rec.eventSource || rec.insightDetails?.eventSource)],
      [t('detail.readOnly'), rec.readOnly === undefined ? null : f('ReadOnly', String(rec.readOnly))],
      [t('detail.resources'), resources.length ? resources : null],
      [t('detail.request'), rec.requestParameters ? jsonBlock(rec.requestParameters) : null],
      [t('detail.eventId'), f('EventId', ev.EventId)],
    ])),
    h('section', { class: 'card', id: 'who' }, h('h2', {}, t('detail.who')), dl([
      [t('detail.identityType'), ui.type],
      [t('detail.user'), f('Username', ev.Username || ui.userName)],
      [t('detail.arn'), ui.arn],
      [t('detail.accessKey'), f('AccessKeyId', ui.accessKeyId || ev.AccessKeyId)],
      [t('detail.session'), sc.attributes?.creationDate ? t('detail.sessionStarted', { time: sc.attributes.creationDate }) : null],
      [t('detail.mfa'), sc.attributes?.mfaAuthenticated === undefined ? null : (sc.attributes.mfaAuthenticated === 'true' ? t('yes') : t('no'))],
    ])),
    h('section', { class: 'card', id: 'when' }, h('h2', {}, t('detail.when')), dl([
      [t('detail.utc'), whenRange],
      [t('detail.local'), when.toLocaleString()],
    ])),
    h('section', { class: 'card', id: 'how' }, h('h2', {}, t('detail.how')), dl([
      [t('detail.tool'), h('strong', {}, how(rec))],
      [t('detail.userAgent'), f('UserAgent', rec.userAgent)],
      [t('detail.fromConsole'), rec.sessionCredentialFromConsole ? t('yes') : t('no')],
    ])),
    h('section', { class: 'card', id: 'where' }, h('h2', {}, t('detail.where')), dl([
      [t('detail.sourceIp'), f('SourceIPAddress', rec.sourceIPAddress)],
      [t('detail.region'), rec.awsRegion],
    ])),
    h('section', { class: 'card', id: 'error' }, h('h2', {}, t('detail.error')), rec.errorCode || rec.errorMessage
      ? dl([[t('detail.errorCode'), f('ErrorCode', rec.errorCode)], [t('detail.errorMessage'), rec.errorMessage]])
      : h('p', {}, t('detail.noError'))));
  main.append(grid);
  const pre = h('pre', { class: 'json', id: 'event-json', tabindex: '0' }, JSON.stringify(rec, null, 2));
  pre.hidden = true;
  const toggle = h('button', { type: 'button', class: 'secondary', id: 'toggle-json', 'aria-expanded': 'false', 'aria-controls': 'event-json', onclick: () => {
    pre.hidden = !pre.hidden;
    toggle.setAttribute('aria-expanded', String(!pre.hidden));
    toggle.textContent = pre.hidden ? t('detail.showJson') : t('detail.hideJson');
  } }, t('detail.showJson'));
  main.append(h('section', { class: 'card' }, h('h2', {}, t('detail.json')), toggle, pre));
}
