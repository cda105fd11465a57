// chatkeep web UI: a small single-page app over the JSON API (/api).
//
// Rules kept throughout: user content goes into the page as text (textContent,
// createElement); the only HTML inserted is a message's `html`, which the server made
// from Markdown with raw HTML off and then sanitized (chatkeep/html.py). Nothing that
// matters is kept in the browser: preferences live in /api/settings.

import * as API from './api.js';
import { ApiError, enc, query } from './api.js';
import {
  append, bytes, clear, fullTime, h, highlighted, humanize, icon, plural, shortTime,
  timeElement,
} from './dom.js';

const root = document.getElementById('app');

const state = {
  me: null,
  settings: {},
  runtimes: [],
  runtimeId: null,
  sidebar: [],
  sidebarLimit: 200,
  view: null,
  conversation: null, // {conversation, branches, messages} as the API gives it
  leaf: null,
  target: null,
  showHidden: false,
  drafts: {},
  sending: false,
  noticeKeep: 0,
  job: null,
};
const ui = {};
let routeSeq = 0;

const ROLE_NAMES = { user: 'You', assistant: 'Assistant', system: 'System', tool: 'Tool' };
const ROLE_FILTERS = ['user', 'assistant', 'system', 'tool'];

// -- small helpers ---------------------------------------------------------------------
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wrap an async handler so a failure shows in the error banner instead of vanishing. */
function guard(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (error) {
      showError(error);
      return undefined;
    }
  };
}

function convHref(runtimeId, conversationId) {
  return `#/r/${enc(runtimeId)}/c/${enc(conversationId)}`;
}

function chatHash(conversation, leaf, target) {
  let hash = convHref(conversation.runtime_id, conversation.id);
  if (target) hash += `/m/${enc(target)}`;
  else if (leaf && leaf !== conversation.active_leaf_id) hash += `/b/${enc(leaf)}`;
  return hash;
}

function replaceHash(hash) {
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function runtimeById(id) {
  return state.runtimes.find((runtime) => runtime.id === id) || null;
}

function runtimeLabel(runtime) {
  if (!runtime) return '';
  return runtime.name && runtime.name !== runtime.id ? `${runtime.id} — ${runtime.name}` : runtime.id;
}

function logo() {
  return h('span', { class: 'logo', 'aria-hidden': 'true' }, icon('chat'));
}

function button(label, attributes, ...children) {
  return h('button', { type: 'button', class: 'btn', ...attributes }, children.length ? children : label);
}

function iconButton(name, label, attributes) {
  return h(
    'button',
    { type: 'button', class: 'icon-btn', 'aria-label': label, title: label, ...attributes },
    icon(name),
  );
}

// -- banners -----------------------------------------------------------------------------
function buildBanners() {
  ui.error = h('div', { class: 'banner banner-error', role: 'alert', 'data-testid': 'error', hidden: true });
  ui.notice = h('div', { class: 'banner banner-notice', role: 'status', 'data-testid': 'notice', hidden: true });
}

function showError(error) {
  if (error instanceof ApiError && error.status === 401 && state.me) {
    sessionEnded(error);
    return;
  }
  const api = error instanceof ApiError;
  const message = (error && error.message) || String(error);
  clear(ui.error);
  const text = h(
    'div',
    { class: 'banner-text' },
    h('strong', { class: 'banner-message', 'data-testid': 'error-message' }, message),
    api && error.hint ? h('span', { class: 'banner-hint' }, error.hint) : null,
    api && error.details
      ? h('ul', { class: 'banner-details' },
        error.details.map((d) => h('li', null, `${d.where}: ${d.problem}`)))
      : null,
  );
  append(
    ui.error,
    h('span', { class: 'banner-icon', 'aria-hidden': 'true' }, '!'),
    text,
    api ? h('code', { class: 'banner-code' }, error.code) : null,
    iconButton('close', 'Dismiss', { class: 'icon-btn banner-close', 'data-testid': 'error-dismiss', onclick: clearError }),
  );
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  clear(ui.error);
}

/** A notice stays until dismissed or until the next screen (or the one after: `keep`). */
function showNotice(...content) {
  state.noticeKeep = 1;
  clear(ui.notice);
  append(
    ui.notice,
    h('div', { class: 'banner-text' }, content),
    iconButton('close', 'Dismiss', { class: 'icon-btn banner-close', 'data-testid': 'notice-dismiss', onclick: clearNotice }),
  );
  ui.notice.hidden = false;
}

function clearNotice() {
  ui.notice.hidden = true;
  clear(ui.notice);
}

// -- modal dialog (an in-page <dialog>, not window.confirm/prompt) ---------------------
function modal({ title, message, input, confirm = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let result = null;
    const dialog = h('dialog', { class: 'modal', 'data-testid': 'modal' });
    const field = input === undefined
      ? null
      : h('input', { type: 'text', class: 'input', value: input, 'data-testid': 'modal-input', 'aria-label': title });
    const ok = h(
      'button',
      { type: 'submit', class: ['btn', danger ? 'btn-danger' : 'btn-primary'], 'data-testid': 'modal-confirm' },
      confirm,
    );
    const cancel = button('Cancel', { 'data-testid': 'modal-cancel', onclick: () => dialog.close() });
    const form = h(
      'form',
      {
        class: 'modal-form',
        onsubmit: (event) => {
          event.preventDefault();
          result = field ? field.value : true;
          dialog.close();
        },
      },
      h('h2', { class: 'modal-title' }, title),
      message ? h('p', { class: 'modal-message' }, message) : null,
      field,
      h('div', { class: 'modal-actions' }, cancel, ok),
    );
    dialog.append(form);
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    if (field) {
      field.focus();
      field.select();
    } else {
      (danger ? cancel : ok).focus();
    }
  });
}

// -- menus ---------------------------------------------------------------------------------
function closeMenus() {
  for (const open of document.querySelectorAll('.menu-wrap.open')) {
    open.classList.remove('open', 'menu-up');
    open.querySelector('.menu').hidden = true;
    open.querySelector('.menu-toggle').setAttribute('aria-expanded', 'false');
  }
}

function menuButton(items, { label, testid }) {
  const wrap = h('div', { class: 'menu-wrap' });
  const toggle = h(
    'button',
    {
      type: 'button', class: 'icon-btn menu-toggle', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
      'aria-label': label, title: label, 'data-testid': testid,
    },
    icon('more'),
  );
  const menu = h(
    'div',
    { class: 'menu', role: 'menu', hidden: true },
    items.map((item) => (item.href
      ? h('a', { class: 'menu-item', role: 'menuitem', href: item.href, download: item.download, 'data-testid': item.testid }, item.label)
      : h(
        'button',
        {
          type: 'button', role: 'menuitem', class: ['menu-item', item.danger && 'danger'], 'data-testid': item.testid,
          onclick: (event) => {
            event.stopPropagation();
            closeMenus();
            guard(item.run)();
          },
        },
        item.label,
      ))),
  );
  toggle.addEventListener('click', (event) => {
    event.stopPropagation();
    const opening = menu.hidden;
    closeMenus();
    if (!opening) return;
    menu.hidden = false;
    wrap.classList.add('open');
    toggle.setAttribute('aria-expanded', 'true');
    const box = menu.getBoundingClientRect();
    if (box.bottom > window.innerHeight - 8) wrap.classList.add('menu-up');
    const first = menu.querySelector('.menu-item');
    if (first) first.focus();
  });
  wrap.append(toggle, menu);
  return wrap;
}

// -- login ---------------------------------------------------------------------------------
function showLogin(reason) {
  state.me = null;
  state.settings = {};
  state.runtimes = [];
  state.runtimeId = null;
  state.sidebar = [];
  state.conversation = null;
  state.drafts = {};
  state.job = null;
  state.view = null;
  const token = h('input', {
    type: 'password', class: 'input', name: 'token', placeholder: 'ck_…', autocomplete: 'off',
    spellcheck: 'false', required: true, id: 'login-token', 'data-testid': 'login-token',
  });
  const form = h(
    'form',
    {
      class: 'login-form',
      onsubmit: guard(async (event) => {
        event.preventDefault();
        clearError();
        await API.post('/api/session', { token: token.value.trim() });
        token.value = '';
        await enter();
      }),
    },
    h('label', { for: 'login-token', class: 'field-label' }, 'API token'),
    h('div', { class: 'row' }, token, h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'login-submit' }, 'Log in')),
  );
  const card = h(
    'div',
    { class: 'login-card', 'data-testid': 'login' },
    h('div', { class: 'brand brand-big' }, logo(), h('span', null, 'chatkeep')),
    reason ? h('p', { class: 'login-reason' }, reason) : null,
    h('p', { class: 'muted' }, 'Open the login link that ', h('code', null, 'chatkeep serve'),
      ' printed, or paste an API token made with ', h('code', null, 'chatkeep token create'), '.'),
    form,
  );
  clear(root);
  root.className = 'app app-login';
  root.append(ui.error, h('main', { class: 'login-page' }, card));
  document.title = 'Log in · chatkeep';
  token.focus();
}

function sessionEnded(error) {
  showLogin('Your session has ended. Log in again.');
  if (error) showError(error);
}

async function logout() {
  await API.del('/api/session');
  history.replaceState(null, '', '/');
  showLogin('You are logged out.');
}

// -- start ---------------------------------------------------------------------------------
const LOGIN_HASH = /^#login=([^&]*)/;

async function boot() {
  buildBanners();
  // A login link can also arrive in a page that is already open (only the hash changes).
  window.addEventListener('hashchange', () => {
    if (LOGIN_HASH.test(location.hash)) loginWithLink().catch(showError);
    else route();
  });
  document.addEventListener('click', closeMenus);
  document.addEventListener('keydown', onKey);
  if (LOGIN_HASH.test(location.hash)) await loginWithLink();
  else await enter(null);
}

/** Log in with the code of the link 'chatkeep serve' printed (#login=<code>), once. */
async function loginWithLink() {
  const match = LOGIN_HASH.exec(location.hash);
  history.replaceState(null, '', location.pathname + location.search);
  let loginError = null;
  try {
    await API.post('/api/session', { login_code: decodeURIComponent(match[1]) });
  } catch (error) {
    loginError = error;
  }
  await enter(loginError);
}

async function enter(loginError) {
  try {
    state.me = await API.get('/api/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin();
      if (loginError) showError(loginError);
      return;
    }
    clear(root);
    root.append(ui.error, h('main', { class: 'login-page' }, h('div', { class: 'login-card' }, h('p', null, 'chatkeep could not start.'))));
    showError(error);
    return;
  }
  const [settings, runtimes] = await Promise.all([API.get('/api/settings'), API.get('/api/runtimes')]);
  state.settings = settings || {};
  state.runtimes = runtimes;
  applyTheme(state.settings['ui.theme']);
  buildShell();
  await route();
  if (loginError) showError(loginError);
}

function onKey(event) {
  if (event.key === 'Escape') closeMenus();
  if (!state.me || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const typing = target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
  if (event.key === '/' && !typing && !document.querySelector('dialog[open]')) {
    event.preventDefault();
    if (state.view === 'search') document.querySelector('[data-testid="search-input"]').focus();
    else location.hash = '#/search';
  }
}

function applyTheme(theme) {
  document.body.classList.toggle('theme-dark', theme === 'dark');
  document.body.classList.toggle('theme-light', theme === 'light');
}

// -- the shell: header, sidebar, main ------------------------------------------------------
function buildShell() {
  ui.switcher = h('select', {
    class: 'select runtime-select', id: 'runtime-switcher', 'data-testid': 'runtime-switcher',
    onchange: () => {
      location.hash = `#/r/${enc(ui.switcher.value)}`;
    },
  });
  fillSwitcher();
  const navLink = (testid, href, iconName, label) => h(
    'a',
    { class: 'nav-link', href, 'data-testid': testid, title: label },
    icon(iconName),
    h('span', { class: 'nav-label' }, label),
  );
  ui.nav = {
    search: navLink('nav-search', '#/search', 'search', 'Search'),
    import: navLink('nav-import', '#/import', 'upload', 'Import'),
    archive: navLink('nav-archive', '#/archive', 'archive', 'Archive'),
    trash: navLink('nav-trash', '#/trash', 'trash', 'Trash'),
    settings: navLink('nav-settings', '#/settings', 'settings', 'Settings'),
  };
  const header = h(
    'header',
    { class: 'topbar' },
    iconButton('menu', 'Show conversations', {
      class: 'icon-btn sidebar-toggle',
      onclick: (event) => {
        event.stopPropagation();
        ui.shell.classList.toggle('sidebar-open');
      },
    }),
    h('a', { class: 'brand', href: '#/' }, logo(), h('span', { class: 'brand-name' }, 'chatkeep')),
    h('label', { class: 'runtime-picker', for: 'runtime-switcher' }, h('span', { class: 'runtime-picker-label' }, 'Runtime'), ui.switcher),
    h('nav', { class: 'topnav', 'aria-label': 'Main' }, Object.values(ui.nav)),
    h('span', { class: 'whoami', 'data-testid': 'whoami', title: 'Logged in as' },
      h('span', { class: 'avatar' }, (state.me.user.display_name || state.me.user.id).charAt(0).toUpperCase()),
      h('span', { class: 'whoami-name' }, state.me.user.display_name || state.me.user.id)),
  );
  ui.sidebarTitle = h('div', { class: 'sidebar-title', 'data-testid': 'sidebar-title' });
  ui.list = h('ul', { class: 'conv-list', 'data-testid': 'conversation-list' });
  ui.more = button('Show more', {
    class: 'btn btn-quiet btn-block', hidden: true,
    onclick: guard(async () => {
      state.sidebarLimit += 200;
      await refreshSidebar();
    }),
  });
  ui.sidebar = h(
    'aside',
    { class: 'sidebar', 'data-testid': 'sidebar', 'aria-label': 'Conversations' },
    h('div', { class: 'sidebar-head' }, ui.sidebarTitle,
      button('', { class: 'btn btn-primary btn-block', 'data-testid': 'new-conversation', onclick: guard(newConversation) },
        icon('plus'), h('span', null, 'New conversation'))),
    h('nav', { class: 'sidebar-scroll', 'aria-label': 'Conversations of this runtime' }, ui.list, ui.more),
  );
  ui.main = h('main', { class: 'main', id: 'main' });
  ui.shell = h(
    'div',
    { class: 'shell' },
    header,
    h('div', { class: 'banners' }, ui.error, ui.notice),
    h('div', { class: 'workspace' }, ui.sidebar, h('div', { class: 'scrim', onclick: () => ui.shell.classList.remove('sidebar-open') }), ui.main),
  );
  clear(root);
  root.className = 'app';
  root.append(ui.shell);
}

function fillSwitcher() {
  clear(ui.switcher);
  for (const runtime of state.runtimes) {
    ui.switcher.append(h('option', { value: runtime.id }, runtimeLabel(runtime)));
  }
  if (state.runtimeId) ui.switcher.value = state.runtimeId;
}

function setView(name, node, title) {
  state.view = name;
  clear(ui.main);
  ui.main.append(node);
  ui.main.dataset.view = name;
  for (const [key, link] of Object.entries(ui.nav)) {
    const active = key === name;
    link.classList.toggle('active', active);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = title ? `${title} · chatkeep` : 'chatkeep';
  markActive();
}

function placeholder(text) {
  return h('div', { class: 'empty' }, h('p', null, text));
}

// -- runtimes ------------------------------------------------------------------------------
async function setRuntime(runtimeId) {
  if (!runtimeById(runtimeId)) {
    state.runtimes = await API.get('/api/runtimes');
    fillSwitcher();
  }
  if (!runtimeById(runtimeId)) {
    throw new ApiError(404, { error: { code: 'not_found', message: `no runtime '${runtimeId}'`, hint: 'pick one in the runtime list' } });
  }
  const changed = state.runtimeId !== runtimeId;
  state.runtimeId = runtimeId;
  ui.switcher.value = runtimeId;
  ui.nav.archive.href = `#/r/${enc(runtimeId)}/archive`;
  ui.nav.trash.href = `#/r/${enc(runtimeId)}/trash`;
  clear(ui.sidebarTitle);
  append(ui.sidebarTitle, h('span', { class: 'sidebar-runtime' }, runtimeId),
    runtimeById(runtimeId).origin === 'imported' ? h('span', { class: 'badge' }, 'imported') : null);
  if (changed) {
    state.sidebarLimit = 200;
    await refreshSidebar();
    rememberRuntime(runtimeId);
  }
}

/** The last runtime is a preference kept in the vault, not in this browser. */
function rememberRuntime(runtimeId) {
  if (state.settings['ui.last_runtime'] === runtimeId) return;
  state.settings['ui.last_runtime'] = runtimeId;
  API.put('/api/settings/ui.last_runtime', { value: runtimeId }).catch(showError);
}

function defaultRuntime() {
  const last = state.settings['ui.last_runtime'];
  if (last && runtimeById(last)) return last;
  return state.runtimes.length ? state.runtimes[0].id : null;
}

async function ensureRuntime() {
  if (state.runtimeId) return;
  const runtimeId = defaultRuntime();
  if (runtimeId) await setRuntime(runtimeId);
}

async function goHome(runtimeId, live) {
  const home = await API.get(`/api/runtimes/${enc(runtimeId)}/route`);
  if (!live()) return;
  replaceHash(convHref(runtimeId, home.id));
  await showConversation(home.id, { live });
}

// -- sidebar -------------------------------------------------------------------------------
async function refreshSidebar() {
  const runtimeId = state.runtimeId;
  if (!runtimeId) return;
  const listed = await API.get(`/api/runtimes/${enc(runtimeId)}/conversations${query({ limit: state.sidebarLimit })}`);
  if (runtimeId !== state.runtimeId) return;
  state.sidebar = listed;
  renderSidebar();
}

function renderSidebar() {
  clear(ui.list);
  let section = null;
  for (const conversation of state.sidebar) {
    const group = conversation.is_primary ? 'home' : conversation.pinned ? 'pinned' : 'recent';
    if (group !== section && group !== 'home') {
      ui.list.append(h('li', { class: 'conv-section', 'aria-hidden': 'true' }, group === 'pinned' ? 'Pinned' : 'Recent'));
    }
    section = group;
    ui.list.append(conversationItem(conversation));
  }
  if (!state.sidebar.length) ui.list.append(h('li', { class: 'conv-empty' }, 'No conversations yet.'));
  ui.more.hidden = state.sidebar.length < state.sidebarLimit;
  markActive();
}

function pinIcon(conversation) {
  if (!conversation.pinned) return null;
  const label = conversation.is_primary ? 'Home conversation (always pinned)' : 'Pinned';
  return h(
    'span',
    { class: ['pin', conversation.is_primary && 'pin-home'], 'data-testid': 'pin-icon', role: 'img', 'aria-label': label, title: label },
    icon('pin'),
  );
}

function conversationItem(conversation) {
  const link = h(
    'a',
    {
      class: 'conv-link', href: convHref(conversation.runtime_id, conversation.id), 'data-testid': 'conversation-link',
      onclick: () => ui.shell.classList.remove('sidebar-open'),
    },
    pinIcon(conversation),
    h(
      'span',
      { class: 'conv-text' },
      h('span', { class: 'conv-title', 'data-testid': 'conversation-name' }, conversation.title || 'Untitled'),
      h('span', { class: 'conv-meta' },
        conversation.is_primary ? 'Home · ' : '',
        plural(conversation.message_count, 'message'),
        conversation.updated_at ? ` · ${shortTime(conversation.updated_at)}` : ''),
    ),
  );
  return h(
    'li',
    {
      class: ['conv-item', conversation.is_primary && 'is-primary', conversation.pinned && 'is-pinned'],
      'data-testid': 'conversation-item', 'data-id': conversation.id,
    },
    link,
    menuButton(conversationActions(conversation), { label: 'Conversation actions', testid: 'conversation-menu' }),
  );
}

function markActive() {
  if (!ui.list) return;
  const openId = state.view === 'chat' && state.conversation ? state.conversation.conversation.id : null;
  for (const item of ui.list.querySelectorAll('.conv-item')) {
    const active = item.dataset.id === openId;
    item.classList.toggle('active', active);
    const link = item.querySelector('.conv-link');
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function conversationActions(conversation) {
  const items = [];
  const act = (action) => () => lifecycle(conversation, action);
  if (conversation.state === 'active' && !conversation.is_primary) {
    items.push(conversation.pinned
      ? { label: 'Unpin', testid: 'action-unpin', run: act('unpin') }
      : { label: 'Pin', testid: 'action-pin', run: act('pin') });
  }
  items.push({ label: 'Rename…', testid: 'action-rename', run: () => renameConversation(conversation) });
  items.push({
    label: 'Export as Markdown', testid: 'action-export',
    href: `/api/conversations/${enc(conversation.id)}/export?format=markdown`, download: '',
  });
  if (!conversation.is_primary) {
    if (conversation.state === 'active') items.push({ label: 'Archive', testid: 'action-archive', run: act('archive') });
    if (conversation.state === 'archived') items.push({ label: 'Unarchive', testid: 'action-unarchive', run: act('unarchive') });
    if (conversation.state === 'trashed') {
      items.push({ label: 'Restore', testid: 'action-restore', run: act('restore') });
      items.push({ label: 'Delete for good…', testid: 'action-delete', danger: true, run: () => deleteForGood(conversation) });
    } else {
      items.push({ label: 'Move to trash', testid: 'action-trash', danger: true, run: act('trash') });
    }
  }
  return items;
}

const UNDO = { archive: 'unarchive', trash: 'restore' };

async function lifecycle(conversation, action) {
  const changed = await API.post(`/api/conversations/${enc(conversation.id)}/${action}`);
  if (UNDO[action]) {
    showNotice(
      action === 'archive' ? 'Archived ' : 'Moved to the trash: ',
      h('strong', null, changed.title || 'Untitled'),
      '. ',
      h('button', {
        type: 'button', class: 'link-btn', 'data-testid': 'notice-undo',
        onclick: guard(async () => {
          clearNotice();
          await lifecycle(changed, UNDO[action]);
        }),
      }, 'Undo'),
    );
  }
  await afterChange(changed, UNDO[action] !== undefined);
  return changed;
}

async function renameConversation(conversation) {
  const title = await modal({ title: 'Rename conversation', input: conversation.title || '', confirm: 'Rename' });
  if (title === null || !title.trim() || title.trim() === conversation.title) return;
  const changed = await API.patch(`/api/conversations/${enc(conversation.id)}`, { title: title.trim() });
  await afterChange(changed, false);
}

async function deleteForGood(conversation) {
  const sure = await modal({
    title: 'Delete for good?',
    message: `“${conversation.title || 'Untitled'}”, its ${plural(conversation.message_count, 'message')} and attachments will be removed from the vault. This cannot be undone.`,
    confirm: 'Delete for good',
    danger: true,
  });
  if (!sure) return;
  await API.del(`/api/conversations/${enc(conversation.id)}`);
  showNotice('Deleted ', h('strong', null, conversation.title || 'Untitled'), ' for good.');
  await afterChange({ ...conversation, state: 'deleted' }, true);
}

/** Bring the sidebar and the current view up to date after a conversation changed. */
async function afterChange(changed, movedAway) {
  await refreshSidebar();
  const open = state.view === 'chat' && state.conversation && state.conversation.conversation.id === changed.id;
  if (open) {
    if (movedAway && changed.state !== 'active') {
      location.hash = `#/r/${enc(changed.runtime_id)}`;
      return;
    }
    state.conversation.conversation = changed;
    renderChat({ keepScroll: true });
  } else if (state.view === 'archive' || state.view === 'trash') {
    await route();
  }
}

async function newConversation() {
  await ensureRuntime();
  const created = await API.post('/api/conversations', { runtime_id: state.runtimeId });
  await refreshSidebar();
  state.focusComposer = true;
  location.hash = convHref(created.runtime_id, created.id);
}

// -- router ----------------------------------------------------------------------------------
function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const at = raw.indexOf('?');
  const path = at >= 0 ? raw.slice(0, at) : raw;
  const params = new URLSearchParams(at >= 0 ? raw.slice(at + 1) : '');
  const parts = path.split('/').filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch (_error) {
      return part;
    }
  });
  return { parts, params };
}

async function route() {
  if (!state.me) return;
  const seq = ++routeSeq;
  const live = () => seq === routeSeq && state.me !== null;
  clearError();
  if (state.noticeKeep > 0) state.noticeKeep -= 1;
  else clearNotice();
  closeMenus();
  ui.shell.classList.remove('sidebar-open');
  const { parts, params } = parseHash();
  try {
    if (parts[0] === 'r' && parts[1]) {
      await setRuntime(parts[1]);
      if (!live()) return;
      if (parts[2] === 'c' && parts[3]) {
        const extra = {};
        for (let i = 4; i + 1 < parts.length; i += 2) extra[parts[i]] = parts[i + 1];
        await showConversation(parts[3], { target: extra.m || null, leaf: extra.b || null, live });
      } else if (parts[2] === 'archive' || parts[2] === 'trash') {
        await showShelf(parts[2], live);
      } else {
        await goHome(parts[1], live);
      }
    } else if (parts[0] === 'search') {
      await ensureRuntime();
      await showSearch(params, live);
    } else if (parts[0] === 'import') {
      await ensureRuntime();
      await showImport(live);
    } else if (parts[0] === 'settings') {
      await ensureRuntime();
      await showSettings(live);
    } else if ((parts[0] === 'archive' || parts[0] === 'trash') && defaultRuntime()) {
      replaceHash(`#/r/${enc(state.runtimeId || defaultRuntime())}/${parts[0]}`);
      await route();
    } else {
      const runtimeId = state.runtimeId || defaultRuntime();
      if (!runtimeId) {
        setView('empty', placeholder('No runtimes yet: import an export, or create a runtime in Settings.'));
        return;
      }
      await setRuntime(runtimeId);
      await goHome(runtimeId, live);
    }
  } catch (error) {
    if (!live()) return;
    if (!ui.main.firstChild) setView('error', placeholder('This page could not be shown.'));
    showError(error);
  }
}

// -- chat view ---------------------------------------------------------------------------------
function loadConversation(conversationId, leaf) {
  return API.get(`/api/conversations/${enc(conversationId)}${query({ html: 'true', leaf })}`);
}

function latestBranchWith(branches, messageId) {
  return branches
    .filter((branch) => branch.message_ids.includes(messageId))
    .sort((a, b) => b.index - a.index)[0] || null;
}

async function showConversation(conversationId, { target = null, leaf = null, live }) {
  let data;
  try {
    data = await loadConversation(conversationId, leaf);
  } catch (error) {
    if (!leaf || !(error instanceof ApiError) || error.status === 401) throw error;
    leaf = null; // that branch is gone: show the active one
    data = await loadConversation(conversationId, null);
  }
  if (target && !data.messages.some((message) => message.id === target)) {
    const branch = latestBranchWith(data.branches, target);
    if (branch) {
      leaf = branch.leaf_id;
      data = await loadConversation(conversationId, leaf);
    }
  }
  if (!live()) return;
  if (data.conversation.runtime_id !== state.runtimeId) await setRuntime(data.conversation.runtime_id);
  if (state.conversation && state.conversation.conversation.id !== conversationId) state.showHidden = false;
  state.conversation = data;
  state.leaf = leaf;
  state.target = target;
  renderChat({ target });
  replaceHash(chatHash(data.conversation, leaf, target));
}

function roleLabel(message) {
  const name = ROLE_NAMES[message.role] || message.role;
  return message.author && message.author !== message.role ? `${name} · ${message.author}` : name;
}

function messageElement(message, target) {
  const siblings = message.sibling_ids || [message.id];
  const body = h('div', { class: 'message-body prose', 'data-testid': 'message-body' });
  if (message.html && message.html.trim()) {
    body.innerHTML = message.html; // sanitized by the server (chatkeep/html.py); nothing else goes in as HTML
  } else if (!message.attachments.length) {
    body.append(h('p', { class: 'muted' }, '(no text)'));
  }
  const attachments = message.attachments.length
    ? h('ul', { class: 'attachments' }, message.attachments.map((attachment) => h(
      'li',
      null,
      h('a', {
        class: 'attachment', href: `/api/attachments/${enc(attachment.id)}`, download: attachment.name,
        'data-testid': 'attachment', title: `${attachment.name} (${attachment.mime_type})`,
      }, icon('clip'), h('span', { class: 'attachment-name' }, attachment.name),
      h('span', { class: 'attachment-size' }, bytes(attachment.size))),
    )))
    : null;
  const interrupted = message.metadata && message.metadata.interrupted;
  return h(
    'article',
    {
      class: ['message', `role-${message.role}`, message.hidden && 'is-hidden', message.id === target && 'target'],
      id: `msg-${message.id}`, 'data-testid': 'message', 'data-id': message.id, 'data-role': message.role,
    },
    h(
      'header',
      { class: 'message-head' },
      h('span', { class: 'message-role', 'data-testid': 'message-role' }, roleLabel(message)),
      message.model ? h('span', { class: 'message-model', 'data-testid': 'message-model' }, message.model) : null,
      h('span', { class: 'message-time' }, timeElement(message.created_at)),
      message.hidden ? h('span', { class: 'badge' }, 'hidden') : null,
      interrupted ? h('span', { class: 'badge badge-warn', title: message.metadata.error || '' }, 'interrupted') : null,
      siblings.length > 1 ? branchNav(message, siblings) : null,
    ),
    body,
    attachments,
  );
}

function branchNav(message, siblings) {
  const index = siblings.indexOf(message.id);
  const go = (delta) => guard(() => switchBranch(message.id, siblings[index + delta]));
  return h(
    'span',
    { class: 'branch-nav', role: 'group', 'aria-label': 'Versions of this message' },
    iconButton('left', 'Previous version', { class: 'icon-btn small', 'data-testid': 'branch-prev', disabled: index <= 0, onclick: go(-1) }),
    h('span', { class: 'branch-label', 'data-testid': 'branch-label' }, `${index + 1}/${siblings.length}`),
    iconButton('right', 'Next version', { class: 'icon-btn small', 'data-testid': 'branch-next', disabled: index >= siblings.length - 1, onclick: go(1) }),
  );
}

/** Show the latest branch that holds `toId`, keeping that message where `fromId` was. */
async function switchBranch(fromId, toId) {
  const data = state.conversation;
  const branch = latestBranchWith(data.branches, toId);
  const leaf = branch ? branch.leaf_id : toId;
  const anchor = document.getElementById(`msg-${fromId}`);
  const offset = anchor ? anchor.getBoundingClientRect().top : null;
  const fresh = await loadConversation(data.conversation.id, leaf);
  if (state.view !== 'chat' || state.conversation !== data) return;
  state.conversation = fresh;
  state.leaf = leaf;
  state.target = null;
  renderChat({ anchor: { id: toId, offset } });
  replaceHash(chatHash(fresh.conversation, leaf, null));
}

function chatHead(data) {
  const conversation = data.conversation;
  const hiddenCount = data.messages.filter((message) => message.hidden).length;
  const runtime = runtimeById(conversation.runtime_id);
  const meta = [
    runtime ? runtime.id : conversation.runtime_id,
    plural(conversation.message_count, 'message'),
    conversation.model,
    conversation.source ? `imported from ${conversation.source.platform}` : null,
    data.branches.length > 1 ? plural(data.branches.length, 'branch', 'branches') : null,
  ].filter(Boolean);
  return h(
    'header',
    { class: 'chat-head' },
    h(
      'div',
      { class: 'chat-heading' },
      h(
        'div',
        { class: 'chat-title-row' },
        h('h1', { class: 'chat-title', 'data-testid': 'conversation-title' }, conversation.title || 'Untitled'),
        conversation.is_primary ? h('span', { class: 'badge badge-accent' }, 'Home') : null,
        conversation.pinned && !conversation.is_primary ? h('span', { class: 'badge' }, 'Pinned') : null,
        conversation.tags.map((tag) => h('span', { class: 'badge badge-tag' }, `#${tag}`)),
      ),
      h('div', { class: 'chat-meta' }, meta.join(' · ')),
    ),
    h(
      'div',
      { class: 'chat-actions' },
      hiddenCount
        ? button('', {
          class: 'btn btn-quiet btn-small', 'data-testid': 'toggle-hidden', 'aria-pressed': String(state.showHidden),
          onclick: () => {
            state.showHidden = !state.showHidden;
            renderChat({ keepScroll: true });
          },
        }, state.showHidden ? `Hide ${hiddenCount} hidden` : `Show ${hiddenCount} hidden`)
        : null,
      menuButton(conversationActions(conversation), { label: 'Conversation actions', testid: 'chat-menu' }),
    ),
  );
}

function stateNote(conversation) {
  if (conversation.state === 'active') return null;
  const archived = conversation.state === 'archived';
  return h(
    'div',
    { class: 'state-note', 'data-testid': 'state-note' },
    archived ? 'This conversation is archived.' : 'This conversation is in the trash.',
    ' ',
    h('button', {
      type: 'button', class: 'link-btn',
      onclick: guard(() => lifecycle(conversation, archived ? 'unarchive' : 'restore')),
    }, archived ? 'Unarchive' : 'Restore'),
  );
}

function renderChat({ target = state.target, anchor = null, keepScroll = false } = {}) {
  const data = state.conversation;
  const conversation = data.conversation;
  const previousScroll = keepScroll && ui.messages ? ui.messages.scrollTop : null;
  ui.messagesInner = h('div', { class: 'messages-inner' });
  const shown = data.messages.filter((message) => !message.hidden || state.showHidden || message.id === target);
  if (!shown.length) {
    ui.messagesInner.append(h(
      'div',
      { class: 'empty-chat' },
      logo(),
      h('h2', null, conversation.is_primary ? `Home of ${conversation.runtime_id}` : 'Start the conversation'),
      h('p', { class: 'muted' }, 'What you write is stored in your vault the moment you send it.'),
    ));
  }
  for (const message of shown) ui.messagesInner.append(messageElement(message, target));
  ui.messages = h('div', { class: 'messages', 'data-testid': 'messages', role: 'log', 'aria-label': 'Messages' }, ui.messagesInner);
  ui.composer = composer(conversation);
  setView(
    'chat',
    h('section', { class: 'chat', 'data-testid': 'chat' }, chatHead(data), stateNote(conversation), ui.messages, ui.composer.form),
    conversation.title || 'Untitled',
  );
  if (target && document.getElementById(`msg-${target}`)) {
    document.getElementById(`msg-${target}`).scrollIntoView({ block: 'center' });
  } else if (anchor && document.getElementById(`msg-${anchor.id}`)) {
    const element = document.getElementById(`msg-${anchor.id}`);
    if (anchor.offset === null) element.scrollIntoView({ block: 'center' });
    else ui.messages.scrollTop += element.getBoundingClientRect().top - anchor.offset;
  } else if (previousScroll !== null) {
    ui.messages.scrollTop = previousScroll;
  } else {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  if (state.focusComposer) {
    state.focusComposer = false;
    ui.composer.input.focus();
  }
}

function composer(conversation) {
  const runtime = conversation.runtime_id;
  const input = h('textarea', {
    class: 'composer-input', 'data-testid': 'composer-input', rows: '1', id: 'composer-input',
    placeholder: `Message ${runtime}…`, 'aria-label': 'Message',
    disabled: conversation.state === 'trashed',
    value: state.drafts[conversation.id] || '',
  });
  const send = h(
    'button',
    {
      type: 'submit', class: 'btn btn-primary composer-send', 'data-testid': 'composer-send', title: 'Send (Enter)',
      disabled: state.sending || conversation.state === 'trashed',
    },
    icon('send'),
    h('span', null, 'Send'),
  );
  const form = h(
    'form',
    {
      class: 'composer', 'data-testid': 'composer',
      onsubmit: (event) => {
        event.preventDefault();
        guard(sendMessage)();
      },
    },
    h('div', { class: 'composer-box' }, input, send),
    h('div', { class: 'composer-hint' }, 'Enter to send · Shift+Enter for a new line',
      state.me.assistant ? ' · the assistant replies' : ''),
  );
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener('input', () => {
    if (input.value) state.drafts[conversation.id] = input.value;
    else delete state.drafts[conversation.id];
    saveDraftSoon(conversation.id, input.value);
  });
  if (!(conversation.id in state.drafts)) restoreDraft(conversation.id, input);
  return { form, input, send };
}

// Drafts live in the vault, not the browser: typed text is saved a moment after the
// last keystroke and offered back after a crash, a reload or on another device.
const draftTimers = {};

function saveDraftSoon(conversationId, text) {
  clearTimeout(draftTimers[conversationId]);
  draftTimers[conversationId] = setTimeout(() => {
    delete draftTimers[conversationId];
    API.put(`/api/conversations/${enc(conversationId)}/draft`, { text }).catch(() => {});
  }, 600);
}

async function restoreDraft(conversationId, input) {
  try {
    const saved = await API.get(`/api/conversations/${enc(conversationId)}/draft`);
    if (saved.text && !input.value && ui.composer && ui.composer.input === input) {
      input.value = saved.text;
      state.drafts[conversationId] = saved.text;
    }
  } catch (error) {
    // A draft that cannot be read is not worth an error banner.
  }
}

async function reloadChat(conversationId, leaf) {
  const fresh = await loadConversation(conversationId, leaf);
  if (state.view !== 'chat' || state.conversation.conversation.id !== conversationId) return;
  state.conversation = fresh;
  state.leaf = leaf;
  state.target = null;
  renderChat({ target: null });
  replaceHash(chatHash(fresh.conversation, leaf, null));
}

async function sendMessage() {
  const data = state.conversation;
  const conversation = data.conversation;
  const { input } = ui.composer;
  const text = input.value;
  if (!text.trim() || state.sending) return;
  state.sending = true;
  ui.composer.send.disabled = true;
  try {
    const last = data.messages[data.messages.length - 1];
    const payload = { text };
    if (last) payload.parent_id = last.id;
    const message = await API.post(`/api/conversations/${enc(conversation.id)}/messages`, payload);
    delete state.drafts[conversation.id];
    clearTimeout(draftTimers[conversation.id]);
    API.put(`/api/conversations/${enc(conversation.id)}/draft`, { text: '' }).catch(() => {});
    if (ui.composer.input === input) input.value = '';
    await reloadChat(conversation.id, message.id);
    if (state.me.assistant) await streamReply(conversation.id, message.id);
  } finally {
    state.sending = false;
    if (ui.composer && state.view === 'chat') {
      ui.composer.send.disabled = conversation.state === 'trashed';
      ui.composer.input.focus();
    }
  }
  await refreshSidebar();
}

/** Ask the server's assistant to answer `parentId`; show the text as it streams. */
async function streamReply(conversationId, parentId) {
  const body = h('div', { class: 'message-body streaming-body', 'data-testid': 'streaming-body' });
  const bubble = h(
    'article',
    { class: 'message role-assistant streaming', 'data-testid': 'message-streaming' },
    h('header', { class: 'message-head' }, h('span', { class: 'message-role' }, 'Assistant'), h('span', { class: 'badge' }, 'writing…')),
    body,
  );
  const viewing = () => state.view === 'chat' && state.conversation.conversation.id === conversationId;
  if (viewing()) {
    ui.messagesInner.append(bubble);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  let text = '';
  let stored = null;
  let failure = null;
  try {
    await API.stream(`/api/conversations/${enc(conversationId)}/reply`, { parent_id: parentId }, (name, value) => {
      if (name === 'delta') {
        text += (value && value.text) || '';
        body.textContent = text;
        if (viewing()) {
          const near = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 120;
          if (near) ui.messages.scrollTop = ui.messages.scrollHeight;
        }
      } else if (name === 'done') {
        stored = value;
      } else if (name === 'error') {
        failure = value;
      }
    });
  } finally {
    if (viewing()) await reloadChat(conversationId, stored ? stored.id : parentId);
  }
  if (failure) showError(new ApiError(502, { error: failure }));
}

// -- search view ----------------------------------------------------------------------------
function dayStart(day) {
  const moment = new Date(`${day}T00:00:00`);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

function dayEnd(day) {
  const moment = new Date(`${day}T23:59:59.999`);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

async function showSearch(params, live) {
  const value = (key) => params.get(key) || '';
  const q = h('input', {
    type: 'search', class: 'input search-input', name: 'q', value: value('q'), placeholder: 'Search every conversation…',
    'data-testid': 'search-input', 'aria-label': 'Search', autocomplete: 'off',
  });
  const runtime = h('select', { class: 'select', name: 'runtime', 'data-testid': 'search-runtime' },
    h('option', { value: '' }, 'All runtimes'),
    state.runtimes.map((r) => h('option', { value: r.id }, r.id)));
  runtime.value = value('runtime');
  const role = h('select', { class: 'select', name: 'role', 'data-testid': 'search-role' },
    h('option', { value: '' }, 'Any role'),
    ROLE_FILTERS.map((name) => h('option', { value: name }, name)));
  role.value = value('role');
  const since = h('input', { type: 'date', class: 'input', name: 'since', value: value('since'), 'data-testid': 'search-since' });
  const until = h('input', { type: 'date', class: 'input', name: 'until', value: value('until'), 'data-testid': 'search-until' });
  const archived = h('input', { type: 'checkbox', name: 'archived', checked: value('archived') === 'true', 'data-testid': 'search-archived' });
  const mode = h('select', { class: 'select', name: 'mode', 'data-testid': 'search-mode' },
    h('option', { value: 'text' }, 'Text'),
    h('option', { value: 'semantic' }, 'Semantic'),
    h('option', { value: 'hybrid' }, 'Hybrid'));
  mode.value = value('mode') || 'text';
  const field = (label, control) => h('label', { class: 'filter' }, h('span', { class: 'filter-label' }, label), control);
  const form = h(
    'form',
    {
      class: 'search-form', role: 'search', 'data-testid': 'search-form',
      onsubmit: (event) => {
        event.preventDefault();
        const next = query({
          q: q.value.trim(), runtime: runtime.value, role: role.value, since: since.value,
          until: until.value, archived: archived.checked ? 'true' : '', mode: mode.value === 'text' ? '' : mode.value,
        });
        const hash = `#/search${next}`;
        if (location.hash === hash) route();
        else location.hash = hash;
      },
    },
    h('div', { class: 'search-bar' }, icon('search', 'search-icon'), q,
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'search-submit' }, 'Search')),
    h('div', { class: 'filters' },
      field('Runtime', runtime), field('Role', role), field('Since', since), field('Until', until),
      field('Mode', mode),
      h('label', { class: 'filter filter-check' }, archived, h('span', null, 'Include archived'))),
  );
  const status = h('p', { class: 'search-status muted', 'data-testid': 'search-status', 'aria-live': 'polite' });
  const results = h('ol', { class: 'results', 'data-testid': 'search-results' });
  const more = button('More results', { class: 'btn btn-quiet', hidden: true, 'data-testid': 'search-more' });
  setView('search', h('section', { class: 'page search-page' }, h('h1', { class: 'page-title' }, 'Search'), form, status, results, more), 'Search');
  const text = value('q').trim();
  if (!text) {
    status.textContent = 'Words, "exact phrases", and filters. Press / anywhere to come here.';
    q.focus();
    return;
  }
  const filters = {
    q: text, runtime: value('runtime'), role: value('role'),
    since: value('since') ? dayStart(value('since')) : '', until: value('until') ? dayEnd(value('until')) : '',
    archived: value('archived') === 'true' ? 'true' : '', mode: value('mode'),
  };
  let offset = 0;
  let total = 0;
  const load = async () => {
    status.textContent = 'Searching…';
    const page = await API.get(`/api/search${query({ ...filters, offset, limit: 20 })}`);
    if (!live()) return;
    for (const hit of page.hits) results.append(resultElement(hit));
    total += page.hits.length;
    offset += page.hits.length;
    more.hidden = !page.has_more;
    status.textContent = total
      ? `${total}${page.has_more ? '+' : ''} ${total === 1 && !page.has_more ? 'result' : 'results'} for “${text}”`
      : `No results for “${text}”.`;
  };
  more.addEventListener('click', guard(load));
  try {
    await load();
  } catch (error) {
    status.textContent = 'The search failed.';
    throw error;
  }
}

function resultElement(hit) {
  const href = hit.message_id
    ? `${convHref(hit.runtime_id, hit.conversation_id)}/m/${enc(hit.message_id)}`
    : convHref(hit.runtime_id, hit.conversation_id);
  return h(
    'li',
    { class: 'result' },
    h(
      'a',
      { class: 'result-link', href, 'data-testid': 'search-result', 'data-message-id': hit.message_id || '' },
      h(
        'div',
        { class: 'result-head' },
        h('span', { class: 'result-title', 'data-testid': 'search-result-title' }, hit.conversation_title || 'Untitled'),
        h('span', { class: 'badge' }, hit.runtime_id),
        hit.role ? h('span', { class: `role-pill role-${hit.role}` }, ROLE_NAMES[hit.role] || hit.role) : null,
        h('span', { class: 'result-time' }, timeElement(hit.created_at, true)),
      ),
      h('p', { class: 'result-snippet', 'data-testid': 'search-snippet' }, highlighted(hit.snippet, hit.highlights)),
    ),
  );
}

// -- import view ------------------------------------------------------------------------------
async function showImport(live) {
  const file = h('input', { type: 'file', class: 'file-input', id: 'import-file', 'data-testid': 'import-file' });
  const chosen = h('span', { class: 'drop-file', 'data-testid': 'import-chosen' }, 'No file chosen');
  const dryRun = h('input', { type: 'checkbox', 'data-testid': 'import-dry-run' });
  const again = h('input', { type: 'checkbox', 'data-testid': 'import-again' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'import-submit', disabled: true }, icon('upload'), h('span', null, 'Import'));
  const update = () => {
    const picked = file.files && file.files[0];
    chosen.textContent = picked ? `${picked.name} · ${bytes(picked.size)}` : 'No file chosen';
    submit.disabled = !picked;
  };
  file.addEventListener('change', update);
  const drop = h(
    'label',
    { class: 'drop', for: 'import-file', 'data-testid': 'import-drop' },
    icon('upload', 'drop-icon'),
    h('span', { class: 'drop-title' }, 'Choose an export file, or drop it here'),
    h('span', { class: 'muted' }, 'ChatGPT, Claude, Gemini and more: the .zip, .json or .html the platform gave you.'),
    chosen,
    h('span', { class: 'btn btn-small drop-browse', 'aria-hidden': 'true' }, 'Browse…'),
    file,
  );
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('dragging');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('dragging');
    if (event.dataTransfer && event.dataTransfer.files.length) {
      file.files = event.dataTransfer.files;
      update();
    }
  });
  const form = h(
    'form',
    {
      class: 'import-form', 'data-testid': 'import-form',
      onsubmit: (event) => {
        event.preventDefault();
        const picked = file.files && file.files[0];
        if (!picked) return;
        submit.disabled = true;
        guard(runImport)(picked, { dry_run: dryRun.checked, again: again.checked }).finally(update);
      },
    },
    drop,
    h('div', { class: 'import-options' },
      h('label', { class: 'check' }, dryRun, h('span', null, 'Dry run: check the file, store nothing')),
      h('label', { class: 'check' }, again, h('span', null, 'Import again, even if this file was imported before'))),
    h('div', { class: 'form-actions' }, submit),
  );
  ui.job = h('div', { class: 'job', 'data-testid': 'import-job' });
  ui.history = h('div', { class: 'import-history', 'data-testid': 'import-history' });
  setView('import', h(
    'section',
    { class: 'page import-page' },
    h('h1', { class: 'page-title' }, 'Import'),
    h('p', { class: 'page-lead muted' }, 'The original file is kept, read-only, in the vault. Importing the same file again changes nothing.'),
    form,
    ui.job,
    h('h2', { class: 'section-title' }, 'Past imports'),
    ui.history,
  ), 'Import');
  if (!state.job) {
    const jobs = await API.get('/api/imports/jobs');
    if (!live()) return;
    if (jobs.length) state.job = jobs[0];
  }
  if (state.job) renderJob(state.job);
  await renderHistory(live);
}

async function renderHistory(live) {
  const records = await API.get('/api/imports');
  if ((live && !live()) || state.view !== 'import') return;
  clear(ui.history);
  if (!records.length) {
    ui.history.append(h('p', { class: 'muted' }, 'Nothing imported yet.'));
    return;
  }
  const count = (record, key) => String((record.counts && record.counts[key]) || 0);
  ui.history.append(h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table' },
      h('thead', null, h('tr', null, ['File', 'Platform', 'Runtime', 'Conversations', 'Messages', 'Warnings', 'When'].map((name) => h('th', null, name)))),
      h('tbody', null, records.map((record) => h(
        'tr',
        { 'data-testid': 'import-row' },
        h('td', { class: 'cell-file' }, record.file.name, h('span', { class: 'muted cell-sub' }, bytes(record.file.size))),
        h('td', null, record.platform),
        h('td', null, record.runtime_id ? h('a', { href: `#/r/${enc(record.runtime_id)}` }, record.runtime_id) : '—'),
        h('td', { class: 'num' }, count(record, 'conversations_added')),
        h('td', { class: 'num' }, count(record, 'messages_added')),
        h('td', { class: 'num' }, count(record, 'warnings')),
        h('td', null, timeElement(record.finished_at || record.started_at, true)),
      ))),
    ),
  ));
}

async function runImport(file, options) {
  clearError();
  let job = await API.api('POST', `/api/imports${query({ filename: file.name, dry_run: options.dry_run, again: options.again })}`, file);
  state.job = job;
  if (state.view === 'import') renderJob(job);
  while (job.state === 'queued' || job.state === 'running') {
    await sleep(500);
    job = await API.get(`/api/imports/jobs/${enc(job.id)}`);
    state.job = job;
    if (state.view === 'import') renderJob(job);
  }
  if (job.state === 'failed') {
    showError(new ApiError(422, { error: job.error || { message: 'the import failed' } }));
    return;
  }
  const result = job.result;
  if (state.view === 'import') await renderHistory(null);
  if (result.dry_run) return;
  state.runtimes = await API.get('/api/runtimes');
  fillSwitcher();
  const counts = result.counts || {};
  showNotice(
    result.already_imported ? 'Already imported: ' : 'Imported ',
    h('strong', null, result.file.name),
    ` into ${result.runtime_id} — ${plural(counts.conversations_added || 0, 'conversation')}, ${plural(counts.messages_added || 0, 'message')}`,
    counts.warnings ? `, ${plural(counts.warnings, 'warning')}` : '',
    '. ',
    h('a', { href: '#/import', 'data-testid': 'notice-report' }, 'See the report'),
  );
  if (state.view === 'import' && result.runtime_id) {
    location.hash = `#/r/${enc(result.runtime_id)}`;
  }
}

function renderJob(job) {
  if (!ui.job || state.view !== 'import') return;
  clear(ui.job);
  const progress = job.progress || { done: 0, total: 0 };
  const finished = job.state === 'done' || job.state === 'failed';
  const bar = h('progress', { class: 'progress', 'data-testid': 'import-progress', max: String(Math.max(progress.total, 1)), 'aria-label': 'Import progress' });
  if (finished) bar.value = Math.max(progress.total, 1);
  else if (progress.total > 0) bar.value = progress.done;
  ui.job.append(
    h('div', { class: 'job-head' },
      h('span', { class: `state-pill state-${job.state}`, 'data-testid': 'import-state' }, job.state),
      h('span', { class: 'job-file' }, job.file_name),
      h('span', { class: 'muted' }, progress.total ? `${progress.done} / ${progress.total}` : '')),
    bar,
  );
  if (finished) ui.job.append(reportElement(job));
}

function reportElement(job) {
  const result = job.result;
  const error = job.error;
  const seconds = result && result.started_at && result.finished_at
    ? (new Date(result.finished_at) - new Date(result.started_at)) / 1000
    : null;
  return h(
    'section',
    { class: ['report', error && 'report-failed'], 'data-testid': 'import-report' },
    h('h2', { class: 'report-title' }, error ? 'Import failed' : result.dry_run ? 'Dry run report' : 'Import report'),
    error ? h('div', { class: 'report-error', 'data-testid': 'import-error' },
      h('strong', null, error.message), error.hint ? h('p', null, error.hint) : null, h('code', null, error.code)) : null,
    result ? h('p', { class: 'report-summary' },
      `${result.platform} export `, h('strong', null, result.file.name), ` (${bytes(result.file.size)}) → runtime `,
      result.dry_run ? h('strong', null, result.runtime_id) : h('a', { href: `#/r/${enc(result.runtime_id)}` }, result.runtime_id),
      seconds !== null ? ` in ${seconds.toFixed(seconds < 10 ? 2 : 0)} s` : '',
      result.already_imported ? '. Already imported before: nothing changed.' : '',
      result.dry_run ? '. Dry run: nothing was stored.' : '') : null,
    result ? h('dl', { class: 'counts', 'data-testid': 'import-counts' },
      Object.entries(result.counts || {}).map(([key, count]) => h('div', { class: 'count' }, h('dt', null, humanize(key)), h('dd', null, String(count))))) : null,
    result && result.warnings.length ? h(
      'details',
      { class: 'warnings', open: result.warnings.length <= 10, 'data-testid': 'import-warnings' },
      h('summary', null, plural((result.counts && result.counts.warnings) || result.warnings.length, 'warning')),
      h('ul', null, result.warnings.slice(0, 300).map((warning) => h('li', null, warning))),
      result.warnings.length > 300 ? h('p', { class: 'muted' }, `…and ${result.warnings.length - 300} more`) : null,
    ) : null,
  );
}

// -- archive and trash ----------------------------------------------------------------------
async function showShelf(kind, live) {
  const runtimeId = state.runtimeId;
  const listed = await API.get(`/api/runtimes/${enc(runtimeId)}/conversations${query({ state: kind === 'archive' ? 'archived' : 'trashed', limit: 1000 })}`);
  if (!live()) return;
  const archive = kind === 'archive';
  const items = listed.map((conversation) => {
    const act = (action) => guard(() => lifecycle(conversation, action));
    const when = archive ? conversation.updated_at : conversation.trashed_at;
    return h(
      'li',
      { class: 'shelf-item', 'data-testid': 'shelf-item', 'data-id': conversation.id },
      h('a', { class: 'shelf-link', href: convHref(conversation.runtime_id, conversation.id) },
        h('span', { class: 'shelf-title' }, conversation.title || 'Untitled'),
        h('span', { class: 'muted shelf-meta' }, plural(conversation.message_count, 'message'),
          when ? ` · ${archive ? 'archived' : 'trashed'} ${fullTime(when)}` : '')),
      h('div', { class: 'shelf-actions' },
        archive
          ? button('Unarchive', { 'data-testid': 'shelf-unarchive', onclick: act('unarchive') })
          : button('Restore', { 'data-testid': 'shelf-restore', onclick: act('restore') }),
        archive ? button('Move to trash', { 'data-testid': 'shelf-trash', onclick: act('trash') }) : null,
        button('Delete for good', { class: 'btn btn-danger-quiet', 'data-testid': 'shelf-delete', onclick: guard(() => deleteForGood(conversation)) })),
    );
  });
  setView(kind, h(
    'section',
    { class: 'page shelf-page', 'data-testid': `${kind}-view` },
    h('h1', { class: 'page-title' }, archive ? 'Archive' : 'Trash', h('span', { class: 'page-sub' }, runtimeId)),
    h('p', { class: 'page-lead muted' }, archive
      ? 'Archived conversations leave the sidebar but stay searchable with “Include archived”.'
      : 'Conversations in the trash can be restored, or deleted for good with their attachments.'),
    items.length
      ? h('ul', { class: 'shelf' }, items)
      : h('div', { class: 'empty' }, icon(archive ? 'archive' : 'trash', 'empty-icon'),
        h('p', null, archive ? `Nothing archived in ${runtimeId}.` : `The trash of ${runtimeId} is empty.`)),
  ), archive ? 'Archive' : 'Trash');
}

// -- settings ----------------------------------------------------------------------------------
async function showSettings(live) {
  const [tokens, usage] = await Promise.all([API.get('/api/tokens'), API.get('/api/usage')]);
  if (!live()) return;
  const user = state.me.user;
  const theme = h('select', {
    class: 'select', id: 'theme-select', 'data-testid': 'theme-select',
    onchange: guard(async () => {
      applyTheme(theme.value);
      state.settings['ui.theme'] = theme.value;
      await API.put('/api/settings/ui.theme', { value: theme.value });
    }),
  }, h('option', { value: 'system' }, 'Same as the system'), h('option', { value: 'light' }, 'Light'), h('option', { value: 'dark' }, 'Dark'));
  theme.value = state.settings['ui.theme'] || 'system';

  const secretBox = h('div', { class: 'secret', 'data-testid': 'token-secret-box', hidden: true });
  const tokenName = h('input', { type: 'text', class: 'input', placeholder: 'e.g. laptop script', 'data-testid': 'token-name', 'aria-label': 'Token name', maxlength: '100' });
  const tokenForm = h(
    'form',
    {
      class: 'row',
      onsubmit: guard(async (event) => {
        event.preventDefault();
        const created = await API.post('/api/tokens', { name: tokenName.value.trim() || 'api' });
        tokenName.value = '';
        renderTokens(await API.get('/api/tokens'));
        const code = h('code', { class: 'secret-value', 'data-testid': 'token-secret' }, created.secret);
        clear(secretBox);
        append(secretBox,
          h('p', null, h('strong', null, `Token “${created.name}” created.`), ' Copy it now: it is shown only once.'),
          h('div', { class: 'row' }, code, button('Copy', {
            'data-testid': 'token-copy',
            onclick: async (clicked) => {
              try {
                await navigator.clipboard.writeText(created.secret);
                clicked.target.textContent = 'Copied';
              } catch (_error) {
                getSelection().selectAllChildren(code);
              }
            },
          })));
        secretBox.hidden = false;
      }),
    },
    tokenName,
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-create' }, 'Create token'),
  );
  const tokenTable = h('div', { class: 'table-wrap' });
  const renderTokens = (list) => {
    clear(tokenTable);
    const sorted = [...list].sort((a, b) => (a.revoked_at ? 1 : 0) - (b.revoked_at ? 1 : 0));
    tokenTable.append(h(
      'table',
      { class: 'table', 'data-testid': 'token-table' },
      h('thead', null, h('tr', null, ['Name', 'Id', 'Created', 'Status', ''].map((name) => h('th', null, name)))),
      h('tbody', null, sorted.map((token) => {
        const mine = token.id === state.me.token_id;
        return h(
          'tr',
          { class: token.revoked_at ? 'revoked' : null, 'data-testid': 'token-row', 'data-id': token.id },
          h('td', null, token.name),
          h('td', null, h('code', null, token.id)),
          h('td', null, timeElement(token.created_at, true)),
          h('td', null, token.revoked_at ? `revoked ${shortTime(token.revoked_at)}` : mine ? h('span', { class: 'badge badge-accent' }, 'this browser') : 'active'),
          h('td', { class: 'cell-actions' }, token.revoked_at ? null : button('Revoke', {
            class: 'btn btn-small btn-danger-quiet', 'data-testid': 'token-revoke',
            onclick: guard(async () => {
              const sure = await modal({
                title: `Revoke “${token.name}”?`,
                message: mine ? 'This is the session of this browser: you will be logged out.' : 'Anything using this token loses access at once.',
                confirm: 'Revoke', danger: true,
              });
              if (!sure) return;
              await API.del(`/api/tokens/${enc(token.id)}`);
              if (mine) {
                sessionEnded(null);
                return;
              }
              renderTokens(await API.get('/api/tokens'));
            }),
          })),
        );
      })),
    ));
  };
  renderTokens(tokens);

  const runtimeId = h('input', { type: 'text', class: 'input', placeholder: 'name, e.g. research', pattern: '[a-z0-9][a-z0-9_-]*', 'data-testid': 'runtime-new-id', 'aria-label': 'New runtime name' });
  const runtimeForm = h(
    'form',
    {
      class: 'row',
      onsubmit: guard(async (event) => {
        event.preventDefault();
        const created = await API.post('/api/runtimes', { id: runtimeId.value.trim() });
        runtimeId.value = '';
        state.runtimes = await API.get('/api/runtimes');
        fillSwitcher();
        location.hash = `#/r/${enc(created.id)}`;
      }),
    },
    runtimeId,
    h('button', { type: 'submit', class: 'btn', 'data-testid': 'runtime-create' }, 'Create runtime'),
  );

  const card = (title, ...content) => h('section', { class: 'card' }, h('h2', { class: 'card-title' }, title), content);
  setView('settings', h(
    'section',
    { class: 'page settings-page', 'data-testid': 'settings' },
    h('h1', { class: 'page-title' }, 'Settings'),
    card('Account',
      h('dl', { class: 'facts' },
        h('div', null, h('dt', null, 'User'), h('dd', { 'data-testid': 'settings-user' }, user.id)),
        user.display_name ? h('div', null, h('dt', null, 'Name'), h('dd', null, user.display_name)) : null,
        h('div', null, h('dt', null, 'Since'), h('dd', null, fullTime(user.created_at))),
        h('div', null, h('dt', null, 'Assistant'), h('dd', null, state.me.assistant ? 'configured on this server' : 'none (messages are stored, nobody replies)'))),
      h('div', { class: 'form-actions' }, button('', { class: 'btn', 'data-testid': 'logout', onclick: guard(logout) }, icon('logout'), h('span', null, 'Log out')))),
    card('Appearance',
      h('label', { class: 'filter', for: 'theme-select' }, h('span', { class: 'filter-label' }, 'Theme'), theme),
      h('p', { class: 'muted small' }, 'Kept in your vault, so every browser you use gets it.')),
    card('Runtimes',
      h('ul', { class: 'plain-list' }, state.runtimes.map((runtime) => h('li', null,
        h('a', { href: `#/r/${enc(runtime.id)}` }, runtime.id),
        h('span', { class: 'muted' }, ` · ${runtime.origin}${runtime.source_platform ? ` (${runtime.source_platform})` : ''} · created ${shortTime(runtime.created_at)}`)))),
      runtimeForm),
    card('API tokens',
      h('p', { class: 'muted small' }, 'For scripts and other tools: send ', h('code', null, 'Authorization: Bearer <token>'), '.'),
      tokenForm, secretBox, tokenTable),
    card('Usage', usageChart(usage)),
  ), 'Settings');
}

// Tokens per day over the usage events the vault holds (POST /api/usage records them),
// drawn as SVG bars: geometry attributes only, so the CSP's style rules hold.
function usageChart(rows) {
  if (!rows.length) {
    return h('p', { class: 'muted small', 'data-testid': 'usage-empty' }, 'No usage recorded yet.');
  }
  const days = new Map();
  for (const row of rows) {
    const day = days.get(row.day) || { tokens: 0, cost: 0, events: 0 };
    day.tokens += row.tokens_in + row.tokens_out;
    day.cost += row.cost;
    day.events += row.events;
    days.set(row.day, day);
  }
  const entries = [...days.entries()].slice(-30);
  const most = Math.max(1, ...entries.map(([, day]) => day.tokens));
  const width = 24;
  const height = 120;
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('class', 'usage-chart');
  svg.setAttribute('data-testid', 'usage-chart');
  svg.setAttribute('viewBox', `0 0 ${entries.length * width} ${height + 16}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Tokens per day');
  entries.forEach(([dayName, day], index) => {
    const barHeight = Math.max(1, Math.round((day.tokens / most) * height));
    const bar = document.createElementNS(svgNs, 'rect');
    bar.setAttribute('class', 'usage-bar');
    bar.setAttribute('x', String(index * width + 3));
    bar.setAttribute('y', String(height - barHeight));
    bar.setAttribute('width', String(width - 6));
    bar.setAttribute('height', String(barHeight));
    const title = document.createElementNS(svgNs, 'title');
    title.textContent = `${dayName}: ${day.tokens.toLocaleString()} tokens, ${day.events} calls, cost ${day.cost.toFixed(4)}`;
    bar.append(title);
    svg.append(bar);
  });
  const total = entries.reduce((sum, [, day]) => sum + day.tokens, 0);
  return h('div', null, svg,
    h('p', { class: 'muted small' }, `${total.toLocaleString()} tokens over ${plural(entries.length, 'day')} · `,
      `from ${entries[0][0]} to ${entries[entries.length - 1][0]}`));
}

// -- go ----------------------------------------------------------------------------------------
boot().catch((error) => {
  if (!ui.error) buildBanners();
  if (!ui.error.isConnected) root.prepend(ui.error);
  showError(error);
});
