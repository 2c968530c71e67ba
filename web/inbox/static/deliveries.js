// Where a notification went: a badge per channel in the inbox list ("email ✓", "vk …"), and on
// request the timeline of GET /api/notifications/<id> (attempts, last error, provider id, times).
const MARKS = { sent: "✓", failed: "✗", suppressed: "—", skipped: "—", pending: "…", sending: "…" };
const MEANING = {
  sent: "sent",
  failed: "failed",
  suppressed: "not sent (unlinked or undeliverable)",
  skipped: "not sent: no account linked",
  pending: "waiting to be sent",
  sending: "being sent",
};

// The channels in the order a notification takes them: the inbox first, then the messages.
const ORDER = ["inbox", "email", "telegram", "vk"];
const rank = (d) => (ORDER.includes(d.channel) ? ORDER.indexOf(d.channel) : ORDER.length);
const ordered = (deliveries) => [...deliveries].sort((a, b) => rank(a) - rank(b));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function describe(d) {
  const meaning = MEANING[d.status] || d.status;
  return d.provider_status ? `${d.channel}: ${meaning} (${d.provider_status})` : `${d.channel}: ${meaning}`;
}

// The channels' badges, or null when the notification carries none (a live one, until asked).
export function badges(deliveries) {
  if (!deliveries || !deliveries.length) return null;
  const row = el("span", "deliveries");
  for (const d of ordered(deliveries)) {
    const badge = el("span", "dlv", `${d.channel} ${MARKS[d.status] || "?"}`);
    badge.dataset.channel = d.channel;
    badge.dataset.status = d.status;
    badge.title = describe(d);
    row.append(badge);
  }
  return row;
}

// A timestamp short enough for a phone: the time, with the date when it is not today's.
function stamp(iso) {
  if (!iso) return null;
  // Microseconds trimmed: some browsers parse at most milliseconds.
  const date = new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  const today = date.toDateString() === new Date().toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : date.toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
}

// One "name value" pair of a step's facts; `key` names it for scripts (data-field).
function field(list, key, name, value, className) {
  const dd = el("dd", className);
  dd.dataset.field = key;
  if (className === "tl-id") dd.append(el("code", "", String(value)));
  else dd.textContent = String(value);
  list.append(el("dt", "", name), dd);
}

function step(d) {
  const li = el("li", "tl-step");
  li.dataset.channel = d.channel;
  li.dataset.status = d.status;
  const head = el("div", "tl-head");
  const badge = el("span", "dlv", `${d.status} ${MARKS[d.status] || ""}`.trim());
  badge.dataset.status = d.status;
  badge.title = describe(d);
  head.append(el("strong", "", d.channel), badge);
  if (d.provider_status) head.append(el("small", "", d.provider_status));
  const facts = el("dl", "tl-fields");
  field(facts, "attempts", "attempts", d.attempts ?? 0);
  if (d.created_at) field(facts, "created_at", "queued", stamp(d.created_at));
  if (d.claimed_at) field(facts, "claimed_at", "last attempt", stamp(d.claimed_at));
  if (d.finished_at) field(facts, "finished_at", "finished", stamp(d.finished_at));
  if (d.provider_message_id) field(facts, "provider_message_id", "provider id", d.provider_message_id, "tl-id");
  if (d.last_error) field(facts, "last_error", "last error", d.last_error, "tl-error");
  li.append(head, facts);
  return li;
}

// The inline timeline: `view` is {loading} while asked, {error}, or {data: the detail}.
export function timeline(view) {
  const box = el("div", "timeline");
  box.setAttribute("aria-live", "polite");
  if (view.loading) {
    box.append(el("p", "hint", "Loading the delivery timeline…"));
  } else if (view.error) {
    box.append(el("p", "tl-error", `Could not load the timeline: ${view.error.message || view.error}`));
  } else if (!view.data.deliveries || !view.data.deliveries.length) {
    box.append(el("p", "hint", "Nothing was sent anywhere for this notification."));
  } else {
    const list = el("ol", "tl-list");
    list.append(...ordered(view.data.deliveries).map(step));
    box.append(list);
  }
  return box;
}
