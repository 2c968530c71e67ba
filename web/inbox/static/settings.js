// The settings view: which notifications reach the user on which channel, their name, language,
// email address and linked messengers. Every change is saved as it is made; the server's answer
// is what is shown.
import { api } from "./api.js";
import { closeLinked, initLinked, openLinked, showLinks } from "./linked.js";

const $ = (id) => document.getElementById(id);

// The grid's columns, in the order the page shows them (the API's choosable channels).
const CHANNELS = [
  ["email", "Email"],
  ["telegram", "Telegram"],
  ["vk", "VK"],
];

const hooks = { showError: () => {}, onUser: () => {} };
let grid = [];
// The name as last saved, so leaving the field unchanged saves nothing.
let savedName = "";
// Saves run one after another: each answer is the whole grid, so the last one sent must be
// the last one shown, whatever order the network delivers them in.
let queue = Promise.resolve();

function flash(id, text) {
  const status = $(id);
  status.textContent = text;
  clearTimeout(status.timer);
  if (text === "Saved") status.timer = setTimeout(() => (status.textContent = ""), 2500);
}

// Optional types that can be emailed: what the "unsubscribe from all" switch speaks for.
const optionalEmail = () => grid.filter((p) => !p.required && p.available.includes("email"));

function cell(pref, channel, title) {
  const td = document.createElement("td");
  td.dataset.label = title;
  if (!pref.available.includes(channel)) {
    // Not offered for this type: nothing to choose, so no box that could mislead.
    td.className = "none";
    td.textContent = "—";
    td.title = `${title} is not offered for this notification`;
    return td;
  }
  const box = document.createElement("input");
  box.type = "checkbox";
  box.dataset.channel = channel;
  box.checked = pref.required || pref.channels[channel];
  box.disabled = pref.required;
  box.setAttribute("aria-label", `${pref.label}: ${title}`);
  box.addEventListener("change", () => savePrefs([{ type: pref.type, channels: { [channel]: box.checked } }]));
  td.append(box);
  return td;
}

function row(pref) {
  const tr = document.createElement("tr");
  tr.dataset.type = pref.type;
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = pref.label;
  if (pref.required) {
    const marker = document.createElement("span");
    marker.className = "required";
    marker.textContent = "required";
    marker.title = "About your money or your account's security: always sent";
    th.append(" ", marker);
  }
  tr.append(th, ...CHANNELS.map(([channel, title]) => cell(pref, channel, title)));
  return tr;
}

function renderPrefs(preferences) {
  grid = preferences;
  $("prefs").tBodies[0].replaceChildren(...grid.map(row));
  const optional = optionalEmail();
  const optout = $("email-optout");
  optout.checked = optional.length > 0 && optional.every((p) => !p.channels.email);
  optout.disabled = optional.length === 0;
}

// PATCH only what changed; on an error the grid is drawn again from what the server last said,
// which puts the clicked box back.
function savePrefs(changes) {
  hooks.showError(null);
  flash("prefs-status", "Saving…");
  queue = queue.then(async () => {
    try {
      renderPrefs((await api("PATCH", "/api/users/me/preferences", { preferences: changes })).preferences);
      flash("prefs-status", "Saved");
    } catch (error) {
      renderPrefs(grid);
      flash("prefs-status", "");
      hooks.showError(error);
    }
  });
  return queue;
}

function optOutOfAll(off) {
  const changes = optionalEmail().map((p) => ({ type: p.type, channels: { email: !off } }));
  if (changes.length) savePrefs(changes);
}

function renderUser(user) {
  const name = $("name");
  savedName = user.name;
  // Leave the field alone while it is being typed in: the answer may be to an earlier save.
  if (document.activeElement !== name) name.value = user.name;
  $("locale").value = user.locale;
  $("email-address").textContent = user.email;
  const bounced = user.email_status === "undeliverable";
  $("email-warning").hidden = !bounced;
  $("email-reason").textContent = bounced && user.email_undeliverable_reason
    ? `The mail server said: ${user.email_undeliverable_reason}`
    : "";
  // A bounced address is the one thing here that needs doing: open its form.
  if (bounced) $("email-change").open = true;
}

async function saveUser(changes, statusId) {
  hooks.showError(null);
  flash(statusId, "Saving…");
  try {
    const user = await api("PATCH", "/api/users/me", changes);
    renderUser(user);
    hooks.onUser(user);
    flash(statusId, "Saved");
    return user;
  } catch (error) {
    flash(statusId, "");
    hooks.showError(error);
    return null;
  }
}

function wireProfile() {
  const form = $("profile-form");
  const name = $("name");
  // Saved as it is changed, like the grid: on leaving the field or pressing Enter.
  const saveName = () => {
    const value = name.value.trim();
    if (value && value !== savedName) saveUser({ name: value }, "profile-status");
  };
  name.addEventListener("change", saveName);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveName();
  });
  $("locale").addEventListener("change", (event) => saveUser({ locale: event.target.value }, "profile-status"));
}

function wireEmail() {
  const form = $("email-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button");
    button.disabled = true;
    const user = await saveUser({ email: fields.email.trim(), password: fields.password }, "email-status");
    button.disabled = false;
    if (user) {
      form.reset();
      $("email-change").open = false;
    }
  });
}

// Once per page: `showError(error|null)` uses the page's error box, `onUser(user)` hears of a
// changed profile (the header shows the name).
export function initSettings(options) {
  Object.assign(hooks, options);
  initLinked({ showError: (error) => hooks.showError(error) });
  $("email-optout").addEventListener("change", (event) => optOutOfAll(event.target.checked));
  wireProfile();
  wireEmail();
}

// Each time the view is shown: fresh from the server, another tab or an email link may have
// changed something since.
export async function openSettings() {
  openLinked();
  try {
    const [user, prefs] = await Promise.all([api("GET", "/api/users/me"), api("GET", "/api/users/me/preferences")]);
    renderUser(user);
    renderPrefs(prefs.preferences);
    showLinks(user);
    hooks.onUser(user);
  } catch (error) {
    hooks.showError(error);
  }
}

// The view is left: nothing of it keeps running (a pending link stops being watched).
export function closeSettings() {
  closeLinked();
}
