// The activity chart, drawn here as SVG: one bar per interval (events, with the failed ones marked at the
// bottom in the error colour), an optional baseline (a dashed line), and each bar a button that zooms into
// its interval (click, Enter or Space).
import { h, s } from './dom.js';
import { t } from './i18n.js';

const W = 800, H = 180, PAD_L = 44, PAD_B = 22, PAD_T = 8;

function short(iso) { return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z'); }

// series: [{Start, End, Count, Errors}], options: {onSelect(bar), baseline (per bar), title}
export function barChart(series, { onSelect, baseline, title } = {}) {
  const max = Math.max(1, ...series.map((b) => b.Count), baseline ? baseline * 1.2 : 0);
  const plotW = W - PAD_L - 4, plotH = H - PAD_B - PAD_T;
  const bw = plotW / Math.max(1, series.length);
  const y = (v) => PAD_T + plotH - (v / max) * plotH;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'group', 'aria-label': title || t('chart.title') });
  // Axis and its top value.
  svg.append(s('line', { x1: PAD_L, y1: PAD_T + plotH, x2: W - 4, y2: PAD_T + plotH, class: 'axis' }));
  svg.append(s('text', { x: PAD_L - 6, y: PAD_T + 10, class: 'tick', 'text-anchor': 'end' }, String(Math.round(max))));
  svg.append(s('text', { x: PAD_L - 6, y: PAD_T + plotH, class: 'tick', 'text-anchor': 'end' }, '0'));
  series.forEach((b, i) => {
    const x = PAD_L + i * bw;
    const label = t('chart.label', { count: b.Count, errors: b.Errors, start: short(b.Start), end: short(b.End) });
    const g = s('g', { class: 'bar', 'data-start': b.Start, 'data-end': b.End, 'data-count': b.Count });
    g.append(s('title', {}, label));
    g.append(s('rect', { x, y: PAD_T, width: bw, height: plotH, class: 'hit' }));
    if (b.Count > 0) {
      g.append(s('rect', { x: x + 1, y: y(b.Count), width: Math.max(1, bw - 2), height: PAD_T + plotH - y(b.Count), class: 'ok' }));
    }
    if (b.Errors > 0) {
      g.append(s('rect', { x: x + 1, y: y(b.Errors), width: Math.max(1, bw - 2), height: PAD_T + plotH - y(b.Errors), class: 'err' }));
    }
    if (onSelect) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'button');
      g.setAttribute('aria-label', label);
      g.addEventListener('click', () => onSelect(b));
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(b); } });
    }
    svg.append(g);
  });
  if (baseline !== undefined && baseline !== null) {
    svg.append(s('line', { x1: PAD_L, x2: W - 4, y1: y(baseline), y2: y(baseline), class: 'baseline' }));
  }
  if (series.length) {
    svg.append(s('text', { x: PAD_L, y: H - 6, class: 'tick' }, short(series[0].Start)));
    svg.append(s('text', { x: W - 4, y: H - 6, class: 'tick', 'text-anchor': 'end' }, short(series[series.length - 1].End)));
  }
  const legend = h('p', { class: 'legend' },
    h('span', { class: 'key ok' }), t('chart.events'), ' ',
    h('span', { class: 'key err' }), t('chart.errors'),
    baseline !== undefined && baseline !== null ? [' ', h('span', { class: 'key baseline' }), t('chart.baseline')] : null);
  return h('figure', { class: 'chart-box' }, svg, legend);
}
