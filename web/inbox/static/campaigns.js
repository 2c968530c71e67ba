// The campaign lifecycle a newcomer clicks through: channel, placement, accept, complete.
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

const STEPS = {
  channel_owner: [
    "Create a channel below.",
    "In a private window, sign in as an advertiser and request a placement in it.",
    "A “new campaign” notification arrives here: accept it.",
    "The advertiser completes it: you are paid, and notified.",
  ],
  advertiser: [
    "Request a placement in a channel below.",
    "The channel's owner accepts it: a notification arrives here.",
    "Complete the campaign: the owner is paid out.",
  ],
  admin: ["Admins watch; campaigns are run by owners and advertisers."],
};

// What each side may do to a campaign in each state (the server has the final word).
const ACTIONS = {
  channel_owner: { pending: ["accept", "reject"] },
  advertiser: { accepted: ["complete", "cancel"] },
  admin: { accepted: ["complete"] },
};

export function renderSteps(user) {
  $("steps").replaceChildren(
    ...(STEPS[user.role] || []).map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

function wireOnce(form, handler) {
  if (form.dataset.wired) return;
  form.dataset.wired = "1";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    handler(Object.fromEntries(new FormData(form)));
  });
}

function row(campaign, channelNames, role, onAction) {
  const li = document.createElement("li");
  li.className = "item campaign";
  li.dataset.status = campaign.status;
  li.dataset.id = campaign.id;
  const head = document.createElement("div");
  head.className = "item-head";
  const title = document.createElement("strong");
  title.textContent = campaign.title;
  const status = document.createElement("span");
  status.className = `status ${campaign.status}`;
  status.textContent = campaign.status;
  head.append(title, status);
  const meta = document.createElement("small");
  meta.textContent = `${channelNames.get(campaign.channel_id) || "channel"} · ${campaign.price}`;
  li.append(head, meta);
  const actions = (ACTIONS[role] || {})[campaign.status] || [];
  if (actions.length) {
    const bar = document.createElement("div");
    bar.className = "actions";
    for (const action of actions) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = action[0].toUpperCase() + action.slice(1);
      button.addEventListener("click", () => {
        button.disabled = true;
        onAction("POST", `/api/campaigns/${campaign.id}/${action}`);
      });
      bar.append(button);
    }
    li.append(bar);
  }
  return li;
}

export async function renderCampaigns(user, onAction) {
  const isOwner = user.role === "channel_owner";
  const isAdvertiser = user.role === "advertiser";
  const [channels, campaigns] = await Promise.all([
    api("GET", isOwner ? "/api/channels?mine=true" : "/api/channels"),
    api("GET", "/api/campaigns"),
  ]);
  const names = new Map(channels.map((c) => [c.id, c.name]));

  const channelForm = $("channel-form");
  channelForm.hidden = !isOwner;
  if (isOwner) {
    wireOnce(channelForm, (fields) => onAction("POST", "/api/channels", fields));
    $("channels").textContent = channels.length
      ? `Your channels: ${channels.map((c) => `${c.name} (${c.price})`).join(", ")}`
      : "You have no channel yet.";
  }

  const campaignForm = $("campaign-form");
  campaignForm.hidden = !isAdvertiser;
  if (isAdvertiser) {
    const select = campaignForm.elements.channel_id;
    const chosen = select.value;
    select.replaceChildren(
      ...channels.map((c) => {
        const option = document.createElement("option");
        option.value = c.id;
        option.textContent = `${c.name} · ${c.platform} · ${c.price}`;
        return option;
      }),
    );
    if (names.has(chosen)) select.value = chosen;
    campaignForm.querySelector("button").disabled = channels.length === 0;
    $("channels").textContent = channels.length ? "" : "No channel exists yet: a channel owner creates one first.";
    wireOnce(campaignForm, (fields) => onAction("POST", "/api/campaigns", fields));
  }

  const sorted = [...campaigns].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  $("campaigns").replaceChildren(...sorted.map((c) => row(c, names, user.role, onAction)));
}
