// The settings view's "Linked accounts" card: link Telegram (a one-time t.me link that opens the
// bot) or VK (a code to send to the community), watch the link arrive, unlink.
// While a link is pending, GET /api/users/me is asked every few seconds until the account shows
// up as linked, the code expires, or the view is left.
import { ApiError, api } from "./api.js";

const POLL_MS = 3000;
const ACCOUNTS = [
  ["telegram", "Telegram"],
  ["vk", "VK"],
];

const hooks = { showError: () => {} };
// The server's word: {telegram: {linked, display_name, linked_at}, vk: {...}}.
let links = {};
// Links started on this page and not used yet, by messenger: {url, code?, expiresAt (ms)}.
const pending = new Map();
// Messengers whose last link expired unused: the card says so next to the button.
const expired = new Set();
// Messengers with a request in flight (their button is disabled meanwhile).
const busy = new Set();
let shown = false;
let timer = null;
// Bumped when the view is left: an answer to an earlier poll is then ignored.
let generation = 0;

// The API's timestamps carry microseconds; some browsers parse at most milliseconds.
const parse = (iso) => Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const since = (iso) =>
  new Date(parse(iso)).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, className, onClick, disabled = false) {
  const node = el("button", className, text);
  node.type = "button";
  node.disabled = disabled;
  node.addEventListener("click", onClick);
  return node;
}

function external(url) {
  const a = el("a", "external", url.replace(/^https:\/\//, ""));
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener";
  return a;
}

// What one messenger's row shows: its name and state, one action, and what to do next.
function row(channel, title) {
  const link = links[channel] || { linked: false };
  const wait = pending.get(channel);
  const state = link.linked ? "linked" : wait ? "pending" : expired.has(channel) ? "expired" : "unlinked";
  const li = el("li", "account");
  li.dataset.account = channel;
  li.dataset.state = state;
  const head = el("div", "account-head");
  const name = el("strong", "", title);
  const label = { linked: "linked", pending: "waiting for you…", expired: "not linked", unlinked: "not linked" };
  head.append(name, el("span", `account-state ${state}`, label[state]));
  li.append(head);
  const disabled = busy.has(channel);
  if (link.linked) {
    li.append(button("Unlink", "secondary account-action", () => unlink(channel), disabled));
    const parts = [link.display_name, link.linked_at && `since ${since(link.linked_at)}`];
    li.append(el("p", "account-detail", parts.filter(Boolean).join(" · ")));
  } else if (wait) {
    li.append(button("Cancel", "link account-action", () => cancel(channel)));
    li.append(channel === "telegram" ? telegramSteps(wait) : vkSteps(wait));
  } else {
    li.append(button(`Link ${title}`, "account-action", () => start(channel), disabled));
    if (state === "expired") {
      li.append(el("p", "account-detail", "The last link expired before it was used: get a new one."));
    }
  }
  return li;
}

function telegramSteps(wait) {
  const box = el("div", "account-detail steps-box");
  const open = el("p", "", "Open ");
  open.append(external(wait.url), " and press Start in Telegram.");
  const until = el("p", "hint", `The link works until ${time(wait.expiresAt)}. This card updates by itself.`);
  box.append(open, until);
  return box;
}

function vkSteps(wait) {
  const box = el("div", "account-detail steps-box");
  const code = el("p", "link-code", wait.code);
  code.setAttribute("aria-label", `code ${wait.code.split("").join(" ")}`);
  const where = el("p", "", "Send this code to the community in a VK message: ");
  where.append(external(wait.url));
  const until = el("p", "hint", `The code works until ${time(wait.expiresAt)}. This card updates by itself.`);
  box.append(where, code, until);
  return box;
}

function render() {
  // A pending link the server now shows as linked is done; one past its time has expired.
  for (const [channel, wait] of pending) {
    if (links[channel] && links[channel].linked) {
      pending.delete(channel);
    } else if (Date.now() >= wait.expiresAt) {
      pending.delete(channel);
      expired.add(channel);
    }
  }
  for (const [channel, link] of Object.entries(links)) if (link.linked) expired.delete(channel);
  // Only a row whose content changed is drawn again: polling must not undo a selected code.
  const list = document.querySelector("#linked-card .linked");
  for (const [channel, title] of ACCOUNTS) {
    const key = JSON.stringify([links[channel], pending.get(channel), expired.has(channel), busy.has(channel)]);
    const current = list.querySelector(`li[data-account="${channel}"]`);
    if (current && current.renderKey === key) continue;
    const next = row(channel, title);
    next.renderKey = key;
    if (current) current.replaceWith(next);
    else list.append(next);
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = null;
  if (shown && pending.size) timer = setTimeout(poll, POLL_MS);
}

async function poll() {
  const mine = generation;
  try {
    const user = await api("GET", "/api/users/me");
    if (mine !== generation) return;
    links = user.links || {};
  } catch {
    // A network hiccup: ask again at the next tick (the page's session handling signs out).
    if (mine !== generation) return;
  }
  render();
}

async function start(channel) {
  hooks.showError(null);
  busy.add(channel);
  render();
  try {
    const answer = await api("POST", `/api/users/me/${channel}/link`);
    expired.delete(channel);
    pending.set(channel, { url: answer.url, code: answer.code, expiresAt: parse(answer.expires_at) });
  } catch (error) {
    hooks.showError(error);
  } finally {
    busy.delete(channel);
    render();
  }
}

function cancel(channel) {
  pending.delete(channel);
  render();
}

async function unlink(channel) {
  hooks.showError(null);
  busy.add(channel);
  render();
  try {
    await api("DELETE", `/api/users/me/${channel}`);
  } catch (error) {
    // Already unlinked (from the chat, or the provider said the bot was blocked): as asked.
    if (!(error instanceof ApiError && error.code === "not_linked")) hooks.showError(error);
  }
  busy.delete(channel);
  await refresh();
}

async function refresh() {
  try {
    links = (await api("GET", "/api/users/me")).links || {};
  } catch (error) {
    hooks.showError(error);
  }
  render();
}

// Once per page: `showError(error|null)` is the page's error box.
export function initLinked(options) {
  Object.assign(hooks, options);
}

// The view is shown: links from now on are watched for.
export function openLinked() {
  shown = true;
}

// The server's `links` of the user, fresh as the view opens.
export function showLinks(user) {
  links = user.links || {};
  render();
}

// The view is left: stop asking; a link started here is forgotten (its code still works).
export function closeLinked() {
  shown = false;
  generation += 1;
  pending.clear();
  expired.clear();
  schedule();
}
