// The dashboard's entry: a hash router (#/keys, #/keys/<id>, #/runs/<label>, #/issue,
// #/denials, #/tokens, #/signin), the signed-in chrome, and one AbortSignal per view so that leaving a
// view stops its polling and requests and drops what it held.
import { clearToken, getToken, setUnauthenticatedHandler } from './api.js';
import { h } from './dom.js';
import { denialsView } from './views/denials.js';
import { issueView } from './views/issue.js';
import { keyView, runView } from './views/key.js';
import { keysView } from './views/keys.js';
import { signinView } from './views/signin.js';
import { tokensView } from './views/tokens.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const signOut = /** @type {HTMLButtonElement} */ (document.getElementById('sign-out'));

/** @type {AbortController | null} */
let current = null;
/** Where to go after signing in. */
let afterSignIn = '#/keys';
/** @type {string | null} */
let signinNotice = null;

function parseHash() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/keys';
  const q = hash.indexOf('?');
  const path = q === -1 ? hash : hash.slice(0, q);
  return { path, query: new URLSearchParams(q === -1 ? '' : hash.slice(q + 1)) };
}

/** @param {string} text */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** @param {boolean} moveFocus */
function route(moveFocus) {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const { path, query } = parseHash();
  const signedIn = getToken() !== null;
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;

  if (!signedIn || path === '/signin') {
    if (path !== '/signin') afterSignIn = location.hash || '#/keys';
    const notice = signinNotice;
    signinNotice = null;
    signinView({
      main,
      notice,
      onSignedIn: () => {
        const target = afterSignIn === '#/signin' ? '#/keys' : afterSignIn;
        afterSignIn = '#/keys';
        if (location.hash === target) route(true);
        else location.hash = target;
      },
    });
    markCurrent('');
    return;
  }

  /** @type {RegExpExecArray | null} */
  let m;
  if (path === '/keys') keysView({ main, query, signal });
  else if ((m = /^\/keys\/([^/]+)$/.exec(path))) keyView({ main, id: decode(m[1] ?? ''), signal });
  else if ((m = /^\/runs\/(.+)$/.exec(path))) runView({ main, label: decode(m[1] ?? ''), signal });
  else if (path === '/issue') issueView({ main, signal });
  else if (path === '/denials') denialsView({ main, signal });
  else if (path === '/tokens') tokensView({ main, signal });
  else {
    document.title = 'Not found — Keybrake';
    main.replaceChildren(h('h1', { tabindex: '-1' }, 'Not found'), h('p', null, 'No such page. ', h('a', { href: '#/keys' }, 'Go to the keys.')));
  }
  markCurrent(`#${path.split('/').slice(0, 2).join('/')}`);
  if (moveFocus) /** @type {HTMLElement | null} */ (main.querySelector('h1'))?.focus();
}

/** @param {string} section e.g. "#/keys" */
function markCurrent(section) {
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

setUnauthenticatedHandler((error) => {
  clearToken();
  signinNotice = `Signed out: the control plane no longer accepts this token (${error.message}).`;
  route(true);
});

signOut.addEventListener('click', () => {
  clearToken();
  afterSignIn = '#/keys';
  if (location.hash === '#/signin') route(true);
  else location.hash = '#/signin';
});

// The skip link must not become a route.
document.getElementById('skip')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', () => route(true));
route(false);
