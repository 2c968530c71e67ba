// The inbox page: sign in, the live list with its unread badge, and the campaign walkthrough;
// at /settings/notifications, the settings view of the same page.
import { ApiError, api, keepFresh, logOut, refreshAccess, session, signIn, signUp, signedOut } from "./api.js";
import { startLive } from "./live.js";
import { renderCampaigns, renderSteps } from "./campaigns.js";
import { closeSettings, initSettings, openSettings } from "./settings.js";
import { badges, timeline } from "./deliveries.js";

const $ = (id) => document.getElementById(id);
const state = {
  user: null,
  items: new Map(),
  unread: 0,
  lastSeq: 0,
  live: null,
  stopRefresh: null,
  // Delivery timelines shown inline, by notification id: {loading} | {error} | {data}.
  timelines: new Map(),
  // The notification the address names (/?notification=<id>, the messengers' button).
  target: null,
};
// The page's views by path; the server serves this page at each of them.
const VIEWS = { "/": "app", "/settings/notifications": "settings" };
const TITLES = { app: "Ad marketplace · inbox", settings: "Notification settings · Ad marketplace" };
const viewFor = (path) => VIEWS[path] || "app";
const seqKey = () => `admarket.last_seq.${state.user.id}`;

function showError(error) {
  const box = $("error");
  box.textContent = error ? error.message || String(error) : "";
  box.hidden = !error;
}

function setConn(value, detail) {
  const conn = $("conn");
  conn.dataset.state = value;
  conn.textContent = value;
  conn.title = detail || value;
}

function setBadge(count) {
  state.unread = Math.max(0, count);
  const badge = $("badge");
  badge.textContent = String(state.unread);
  badge.dataset.count = String(state.unread);
  setTitle();
}

function setTitle() {
  const base = TITLES[viewFor(location.pathname)];
  document.title = state.unread ? `(${state.unread}) ${base}` : base;
}

// Show the view the address names. The inbox stays loaded (and live) behind the settings, so
// going back to it is instant and its badge keeps counting.
function showView() {
  const view = viewFor(location.pathname);
  for (const id of Object.values(VIEWS)) $(id).hidden = id !== view;
  const link = $("nav-settings");
  if (view === "settings") link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
  setTitle();
  if (view === "settings") openSettings();
  else closeSettings();
}

function navigate(path) {
  if (path === location.pathname) return;
  history.pushState(null, "", path);
  showError(null);
  showView();
  window.scrollTo(0, 0);
}

// Links marked data-nav change the view without loading the page again; a click meant for a
// new tab or window (modifier keys, middle button) is left to the browser.
function wireNavigation() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (state.user) navigate(link.pathname);
  });
  // Signed out, the sign-in form stays; only its note about the settings follows the address.
  window.addEventListener("popstate", () => (state.user ? showView() : showAuth()));
}

// The settings view changed the profile: the header and the stored session follow.
function onUser(user) {
  state.user = { ...state.user, ...user };
  session.save({ ...session.load(), user: state.user });
  $("who").textContent = `${user.name} · ${user.role.replace("_", " ")}`;
}

function when(n) {
  const value = n.created_at || n.timestamp;
  return value ? new Date(value).toLocaleString() : "";
}

// Show or hide one notification's delivery timeline; shown, it is asked for afresh.
async function toggleTimeline(n) {
  if (state.timelines.has(n.id)) {
    state.timelines.delete(n.id);
    renderList();
    return;
  }
  state.timelines.set(n.id, { loading: true });
  renderList();
  let view;
  try {
    const data = await api("GET", `/api/notifications/${n.id}`);
    view = { data };
    // A live notification had no deliveries: now its badges can show too.
    const known = state.items.get(n.seq);
    if (known) state.items.set(n.seq, { ...known, deliveries: data.deliveries, fresh: false });
  } catch (error) {
    view = { error };
  }
  // Hidden again while it was being asked for: leave it hidden.
  if (state.timelines.has(n.id)) state.timelines.set(n.id, view);
  renderList();
}

// Below the message: the channels' badges (click: the timeline), "details", "Mark read".
function itemFoot(n) {
  const foot = document.createElement("div");
  foot.className = "item-foot";
  const open = state.timelines.has(n.id);
  const row = badges(n.deliveries);
  if (row) {
    row.addEventListener("click", () => toggleTimeline(n));
    foot.append(row);
  }
  if (n.id) {
    const details = document.createElement("button");
    details.type = "button";
    details.className = "link details";
    details.textContent = open ? "hide details" : "details";
    details.setAttribute("aria-expanded", String(open));
    details.addEventListener("click", () => toggleTimeline(n));
    foot.append(details);
  }
  if (!n.read) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link mark-read";
    button.textContent = "Mark read";
    button.addEventListener("click", () => markRead(n));
    foot.append(button);
  }
  return foot;
}

function renderList() {
  const list = $("list");
  const items = [...state.items.values()].sort((a, b) => b.seq - a.seq);
  $("empty").hidden = items.length > 0;
  list.replaceChildren(
    ...items.map((n) => {
      const li = document.createElement("li");
      li.className = `item ${n.read ? "read" : "unread"}${n.fresh ? " fresh" : ""}`;
      if (n.id && n.id === state.target) li.classList.add("target");
      li.dataset.seq = n.seq;
      li.dataset.type = n.type;
      if (n.id) li.dataset.id = n.id;
      const head = document.createElement("div");
      head.className = "item-head";
      const title = document.createElement("strong");
      title.textContent = n.title;
      const meta = document.createElement("small");
      meta.textContent = `#${n.seq} · ${n.type} · ${when(n)}`;
      head.append(title, meta);
      const message = document.createElement("p");
      message.textContent = n.message;
      li.append(head, message, itemFoot(n));
      const shown = state.timelines.get(n.id);
      if (shown) li.append(timeline(shown));
      return li;
    }),
  );
}

// Every notification passes here, from REST, catch-up or live: repeats (same seq) are dropped.
function receive(n, { live = false } = {}) {
  const known = state.items.get(n.seq);
  if (known) return;
  const read = n.read === true || Boolean(n.read_at);
  state.items.set(n.seq, { ...n, read, fresh: live });
  if (n.seq > state.lastSeq) {
    state.lastSeq = n.seq;
    localStorage.setItem(seqKey(), String(n.seq));
  }
  if (live) {
    if (!read) setBadge(state.unread + 1);
    if (n.campaign_id) refreshCampaigns();
  }
  renderList();
  // Flash once: the next render must not replay the arrival animation.
  state.items.get(n.seq).fresh = false;
}

// Opened from a messenger's button (/?notification=<id>): bring that notification into view.
function showTarget() {
  const id = new URLSearchParams(location.search).get("notification");
  if (!id || ![...state.items.values()].some((n) => n.id === id)) return;
  state.target = id;
  renderList();
  const li = [...$("list").children].find((item) => item.dataset.id === id);
  if (li && viewFor(location.pathname) === "app") li.scrollIntoView({ block: "center" });
}

async function markRead(n) {
  try {
    await api("POST", `/api/notifications/${n.id}/read`);
    state.items.set(n.seq, { ...(state.items.get(n.seq) || n), read: true, fresh: false });
    renderList();
    setBadge((await api("GET", "/api/notifications/unread-count")).count);
  } catch (error) {
    showError(error);
  }
}

async function markAllRead() {
  try {
    await api("POST", "/api/notifications/read-all");
    for (const [seq, n] of state.items) state.items.set(seq, { ...n, read: true, fresh: false });
    renderList();
    setBadge(0);
  } catch (error) {
    showError(error);
  }
}

let campaignsBusy = null;
function refreshCampaigns() {
  // Coalesce bursts of notifications into one reload of the lists.
  campaignsBusy = campaignsBusy || renderCampaigns(state.user, onAction).finally(() => {
    campaignsBusy = null;
  });
  return campaignsBusy;
}

async function onAction(method, path, body) {
  showError(null);
  try {
    await api(method, path, body);
    await refreshCampaigns();
  } catch (error) {
    showError(error);
  }
}

async function openInbox(user) {
  state.user = user;
  state.items.clear();
  $("auth").hidden = true;
  $("logout").hidden = false;
  $("nav-settings").hidden = false;
  $("who").textContent = `${user.name} · ${user.role.replace("_", " ")}`;
  showView();
  const recent = await api("GET", "/api/notifications?limit=100");
  const stored = Number(localStorage.getItem(seqKey()) || 0);
  const newest = recent.reduce((max, n) => Math.max(max, n.seq), 0);
  // A stored seq beyond the server's newest belongs to another database (reset): start over.
  state.lastSeq = stored <= newest ? Math.max(stored, newest) : newest;
  recent.forEach((n) => receive(n));
  showTarget();
  setBadge((await api("GET", "/api/notifications/unread-count")).count);
  renderSteps(user);
  await refreshCampaigns();
  state.stopRefresh = keepFresh(() => signOut());
  state.live = await startLive(document.body.dataset.socketIo, {
    onNotification: (n) => receive(n, { live: true }),
    onState: setConn,
    getToken: () => (session.load() || {}).access_token,
    getLastSeq: () => state.lastSeq,
    refresh: refreshAccess,
    signedOut,
    onSignedOut: () => signOut(),
    fetchAfter: (after) => api("GET", `/api/notifications?after_seq=${after}&limit=500`),
  });
  // A new access token: reconnect with it now, rather than be cut off when the old one expires.
  window.addEventListener("admarket:token", () => state.live && state.live.restart());
  // Coming back from the other side's window: its new channel or campaign should be listed.
  window.addEventListener("focus", refreshCampaigns);
  document.addEventListener("visibilitychange", () => document.hidden || refreshCampaigns());
}

async function signOut() {
  if (state.live) state.live.close();
  if (state.stopRefresh) state.stopRefresh();
  await logOut();
  session.clear();
  location.reload();
}

function showAuth() {
  $("auth").hidden = false;
  for (const id of Object.values(VIEWS)) $(id).hidden = true;
  // Arrived from an email's settings link: say why the form is here; signing in goes on there.
  $("auth-next").hidden = viewFor(location.pathname) !== "settings";
  setConn("offline");
}

function wireAuth() {
  document.querySelectorAll(".tabs button").forEach((tab) => {
    tab.addEventListener("click", () => {
      document.querySelectorAll(".tabs button").forEach((t) => t.classList.toggle("active", t === tab));
      document.querySelectorAll("[data-pane]").forEach((pane) => {
        pane.hidden = pane.dataset.pane !== tab.dataset.tab;
      });
    });
  });
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(null);
    const form = new FormData(event.target);
    try {
      await openInbox(await signIn(form.get("email"), form.get("password")));
    } catch (error) {
      showError(error);
    }
  });
  $("signup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(null);
    try {
      await openInbox(await signUp(Object.fromEntries(new FormData(event.target))));
    } catch (error) {
      showError(error);
    }
  });
}

async function boot() {
  wireAuth();
  wireNavigation();
  initSettings({ showError, onUser });
  $("read-all").addEventListener("click", markAllRead);
  $("logout").addEventListener("click", signOut);
  const saved = session.load();
  if (!saved || !saved.user) return showAuth();
  try {
    await openInbox(saved.user);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session.clear();
      return showAuth();
    }
    showError(error);
  }
}

boot();
