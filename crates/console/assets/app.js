// The console's entry: the header (navigation, language, who is signed in, sign out) and the router. Pages
// are drawn from the address, so reload and shared links work; in-console links navigate without a reload.
import { currentSession, loadSession, mayBeSignedIn, signOut, whenSignedOut } from './api.js';
import { h, link, clear } from './dom.js';
import { renderEvent, renderEvents } from './events.js';
import { LANGUAGES, lang, setLang, t } from './i18n.js';
import { renderInsights, renderSignIn, renderTrails } from './pages.js';

const main = document.getElementById('main');
const top = document.getElementById('top');
let pendingNotice = null;

function header() {
  clear(top);
  const s = currentSession();
  const langSel = h('select', { id: 'language', 'aria-label': t('nav.language') },
    Object.entries(LANGUAGES).map(([code, name]) => h('option', { value: code, selected: code === lang() }, name)));
  langSel.addEventListener('change', () => { setLang(langSel.value); route(); });
  const here = location.pathname;
  const nav = s ? h('nav', { 'aria-label': 'main' },
    link('/events', t('nav.events'), { 'aria-current': here.startsWith('/events') || here === '/' ? 'page' : null }),
    link('/trails', t('nav.trails'), { 'aria-current': here === '/trails' ? 'page' : null }),
    link('/insights', t('nav.insights'), { 'aria-current': here === '/insights' ? 'page' : null })) : null;
  const who = s ? h('span', { class: 'who', id: 'signed-in-as' }, t('nav.signedInAs', { user: s.user, role: s.role })) : null;
  const out = s ? h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: async () => {
    await signOut(); navigate('/signin');
  } }, t('nav.signout')) : null;
  top.append(h('div', { class: 'bar' }, link(s ? '/events' : '/signin', t('app.name'), { class: 'brand' }), nav,
    h('div', { class: 'right' }, who, h('label', { class: 'lang' }, langSel), out)));
}

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  route();
}

async function route() {
  const path = location.pathname;
  if (!currentSession()) {
    // With the CSRF cookie of a session, the event history's calls start at once, beside the session's check
    // (the other pages wait: what they show depends on the session's role).
    const early = mayBeSignedIn() && path.startsWith('/events');
    const checked = loadSession().catch(() => ({ signedOut: 'NotSignedIn' }));
    if (early) draw(path);
    const s = await checked;
    if (s.signedOut) {
      if (s.signedOut === 'SessionExpired') pendingNotice = t('signin.expired');
      const back = path === '/signin' ? '/events' : path + location.search;
      history.replaceState({ back }, '', '/signin');
      header();
      renderSignIn(main, { notice: pendingNotice, onSignedIn: () => { pendingNotice = null; navigate(back, true); } });
      return;
    }
    if (early) { header(); return; }
  }
  header();
  draw(path);
}

function draw(path) {
  const ctx = { navigate };
  if (path === '/' || path === '/signin') return navigate('/events', true);
  if (path === '/events') return renderEvents(main, ctx);
  if (path.startsWith('/events/')) return renderEvent(main, decodeURIComponent(path.slice('/events/'.length)));
  if (path === '/trails') return renderTrails(main);
  if (path === '/insights') return renderInsights(main);
  clear(main).append(h('div', { class: 'error', role: 'alert' }, t('error.page', { path })));
}

// A call answered 401: the session expired or ended meanwhile.
whenSignedOut((err) => {
  pendingNotice = err.code === 'SessionExpired' ? t('signin.expired') : t('signin.ended');
  route();
});

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
  main.focus({ preventScroll: true });
});
window.addEventListener('popstate', () => route());
route();
