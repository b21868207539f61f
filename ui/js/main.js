// The app: sign-in with the one-time code, the shell (navigation, connection banner), hash routing to the pages.

import { html, render, useState, useEffect, useLayoutEffect, useRef } from './lib.js';
import { get, post, del, onUnauthorized, prefetch, prime, ApiError } from './api.js';
import { connectEvents, subscribeState } from './events.js';
import { ErrorText, Field } from './components.js';
import { Overview, OVERVIEW_DATA } from './pages/overview.js';
import { Accounts } from './pages/accounts.js';
import { ClientKeys } from './pages/keys.js';
import { Requests } from './pages/requests.js';
import { Usage } from './pages/usage.js';
import { Settings } from './pages/settings.js';

const PAGES = [
  { path: 'overview', title: 'Overview', component: Overview },
  { path: 'accounts', title: 'Accounts', component: Accounts },
  { path: 'keys', title: 'Client keys', component: ClientKeys },
  { path: 'requests', title: 'Requests', component: Requests },
  { path: 'usage', title: 'Usage', component: Usage },
  { path: 'settings', title: 'Settings', component: Settings },
];

function currentRoute() {
  const m = /^#\/([a-z-]+)/.exec(location.hash);
  const page = m && PAGES.find((p) => p.path === m[1]);
  return page ? page.path : 'overview';
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** The code from `#code=…` (what `llm-gateway ui` opens), or a code pasted as the whole address. */
function codeFrom(text) {
  const m = /(?:^|[#&?])code=([^&#\s]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text.trim();
}

/** The page to open after signing in with `#code=…&page=accounts` (the desktop app after a login). */
function pageAfterSignIn(hash) {
  const m = /[#&]page=([a-z-]+)/.exec(hash);
  return m && PAGES.some((p) => p.path === m[1]) ? m[1] : 'overview';
}

const HOW_TO_SIGN_IN = html`<p>
  To sign in, run <code>llm-gateway ui</code> in a terminal on the machine where the gateway runs: it opens this
  page signed in (with <code>--no-browser</code> it prints the address instead). Each code works once, for two
  minutes. You can also paste the code, or the whole address it printed, here.
</p>`;

function SignIn({ reason, onSignedIn }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef(null);
  useEffect(() => heading.current && heading.current.focus(), []);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post('/session', { code: codeFrom(code) });
      onSignedIn();
    } catch (err) {
      setError(err.status === 0 ? err.message : `That code was not accepted: ${err.message}`);
      setBusy(false);
    }
  };
  const title = reason === 'expired' ? 'Your session has expired' : reason === 'signed_out' ? 'You are signed out' : 'Sign in to LLM Gateway';
  return html`<main class="signin" id="main">
    <h1 tabindex="-1" ref=${heading}>${title}</h1>
    ${reason === 'expired' ? html`<p>The gateway no longer accepts this page's session (it expired, or the gateway restarted).</p>` : null}
    ${HOW_TO_SIGN_IN}
    <form onSubmit=${submit} class="card">
      <${Field} id="signin-code" label="Sign-in code" error=${error}>
        ${(a) => html`<input ...${a} type="text" autocomplete="off" spellcheck=${false} value=${code} onInput=${(e) => setCode(e.target.value)} required />`}
      <//>
      <button type="submit" class="btn primary" disabled=${busy || !code.trim()}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

function Unreachable({ error, onRetry }) {
  return html`<main class="signin" id="main">
    <h1>Cannot reach the gateway</h1>
    <${ErrorText} error=${error} />
    <button type="button" class="btn primary" onClick=${onRetry}>Try again</button>
  </main>`;
}

function ConnectionBanner() {
  const [state, setState] = useState('connecting');
  useEffect(() => subscribeState(setState), []);
  if (state !== 'reconnecting') return null;
  return html`<div class="banner" role="status">
    The gateway is restarting or unreachable. Reconnecting by itself; live updates resume when it answers.
  </div>`;
}

function Shell({ onSignOut }) {
  const route = useRoute();
  const page = PAGES.find((p) => p.path === route);
  const [signOutError, setSignOutError] = useState(null);
  const first = useRef(true);
  useEffect(() => connectEvents(), []);
  // A layout effect: the new page's heading takes the focus in the same task that shows it, so nothing the user
  // (or a test) does after seeing the page can be undone by a late focus move.
  useLayoutEffect(() => {
    document.title = `${page.title} · LLM Gateway`;
    if (first.current) {
      first.current = false;
      return;
    }
    const h1 = document.querySelector('main h1');
    if (h1) h1.focus();
  }, [route]);
  const signOut = async () => {
    setSignOutError(null);
    try {
      await del('/session');
      onSignOut();
    } catch (e) {
      setSignOutError(e);
    }
  };
  const Page = page.component;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/overview"><img src="favicon.svg" alt="" width="22" height="22" /> LLM Gateway</a>
      <nav aria-label="Pages">
        <ul>
          ${PAGES.map((p) => html`<li><a href=${`#/${p.path}`} aria-current=${p.path === route ? 'page' : undefined}>${p.title}</a></li>`)}
        </ul>
      </nav>
      <button type="button" class="btn small" onClick=${signOut}>Sign out</button>
    </header>
    <${ConnectionBanner} />
    ${signOutError ? html`<div class="banner bad"><${ErrorText} error=${signOutError} /></div>` : null}
    <main id="main" tabindex="-1" data-page=${route}>
      <${Page} key=${route} />
    </main>`;
}

function App() {
  // boot → (signin | expired | signed_out | unreachable | app)
  const [phase, setPhase] = useState('boot');
  const [bootError, setBootError] = useState(null);

  const boot = async () => {
    setPhase('boot');
    const code = /^#code=/.test(location.hash) ? codeFrom(location.hash) : null;
    if (code) {
      // The code is single-use; take it out of the address bar (and history) before anything else.
      history.replaceState(null, '', `${location.pathname}${location.search}#/${pageAfterSignIn(location.hash)}`);
      try {
        await post('/session', { code });
        setPhase('app');
        return;
      } catch (e) {
        if (e.status === 0) {
          setBootError(e);
          setPhase('unreachable');
          return;
        }
        setBootError(new ApiError(e.status, e.type, `The sign-in code from the address was not accepted: ${e.message}`));
      }
    }
    try {
      // With a session cookie (most loads), the overview's other data comes in while the session is checked.
      if (currentRoute() === 'overview') OVERVIEW_DATA.forEach(prefetch);
      prime('/status', await get('/status'));
      setPhase('app');
    } catch (e) {
      if (e.status === 401) setPhase('signin');
      else {
        setBootError(e);
        setPhase(e.status === 0 ? 'unreachable' : 'signin');
      }
    }
  };

  useEffect(() => {
    onUnauthorized(() => setPhase((p) => (p === 'app' ? 'expired' : p)));
    boot();
    // A new `#code=` opened in this tab (e.g. `llm-gateway ui` run again) is a same-document navigation.
    const onHash = () => {
      if (/^#code=/.test(location.hash)) boot();
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  if (phase === 'boot') return html`<p class="boot" role="status">Loading LLM Gateway…</p>`;
  if (phase === 'unreachable') return html`<${Unreachable} error=${bootError} onRetry=${boot} />`;
  if (phase === 'app') return html`<${Shell} onSignOut=${() => setPhase('signed_out')} />`;
  return html`<div>
    ${bootError && phase === 'signin' ? html`<div class="banner bad"><${ErrorText} error=${bootError} /></div>` : null}
    <${SignIn} reason=${phase} onSignedIn=${() => { setBootError(null); setPhase('app'); }} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
