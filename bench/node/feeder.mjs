// Feeds the peer through Redis with @socket.io/redis-emitter, as a back-end worker would.
//
//   node feeder.mjs CONFIG.json
// CONFIG.json: {"redisUrl": U, "mode": "broadcast"|"targeted", "rooms": [...], "count": N,
// "rate": R, "delay": D, "offset": 0}.
// rate 0 sends as fast as it can (a burst); otherwise message i is scheduled for
// go + delay + i / rate and carries that time as data.t (open loop). Prints one JSON line.
import { config, waitForGo } from "./helper.mjs";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const client = createClient({ url: config.redisUrl });
await client.connect();
const emitter = new Emitter(client);
const now = () => performance.timeOrigin + performance.now();
const rooms = config.rooms || [];
const offset = config.offset || 0;

function send(i, t) {
  const body = {
    id: `bench-${i}`,
    seq: i + 1,
    type: config.mode === "broadcast" ? "broadcast" : "new_campaign",
    title: "Benchmark",
    message: "A benchmark notification of about the size of a real one, in one line of text.",
    data: { t, campaign_id: "00000000-0000-0000-0000-000000000000", channel_name: "Tech News" },
    timestamp: new Date(t).toISOString(),
  };
  if (config.mode === "broadcast") emitter.emit("notification", body);
  else emitter.to(rooms[(offset + i) % rooms.length]).emit("notification", body);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await client.publish("bench-warmup", "x");
const startAt = await waitForGo();
while (now() < startAt) await sleep(Math.min(5, startAt - now()));
const first = now();
let sent = 0;
let maxLag = 0;
if (!config.rate) {
  while (sent < config.count) {
    const end = Math.min(config.count, sent + 500);
    for (; sent < end; sent++) send(sent, now());
    await new Promise((r) => setImmediate(r));
  }
} else {
  const period = 1000 / config.rate;
  while (sent < config.count) {
    const due = Math.min(config.count, Math.floor((now() - startAt) / period) + 1);
    for (; sent < due; sent++) {
      const t = startAt + sent * period;
      maxLag = Math.max(maxLag, now() - t);
      send(sent, t);
    }
    await sleep(1);
  }
}
const last = now();
await client.quit();
console.log(JSON.stringify({ sent, first_at: first, last_at: last, max_lag_ms: maxLag }));
