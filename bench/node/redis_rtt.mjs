// The limit: a raw Redis pub/sub round trip on this machine, with node-redis.
//
//   node redis_rtt.mjs CONFIG.json   # {"redisUrl": U, "rate": R, "seconds": S, "burst": N}
// Publishes R messages/s for S seconds (open loop, each timed from its scheduled time) to a
// channel this process also subscribes to, then N messages as fast as it can. Prints one JSON
// line: the round-trip samples (ms) and the burst's messages per second through one subscriber.
import { readFileSync } from "node:fs";
import { createClient } from "redis";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const pub = createClient({ url: config.redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const filler = "x".repeat(300);
const samples = [];
let received = 0;
let lastAt = 0;
await sub.subscribe("bench-rtt", (message) => {
  const at = now();
  received += 1;
  lastAt = at;
  const t = Number(message.slice(0, message.indexOf(" ")));
  if (t > 0) samples.push(at - t);
});

const total = Math.round(config.rate * config.seconds);
const period = 1000 / config.rate;
const startAt = now() + 100;
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor((now() - startAt) / period) + 1);
  for (; sent < due; sent++) pub.publish("bench-rtt", `${startAt + sent * period} ${filler}`);
  await sleep(1);
}
const until = now() + 5000;
while (received < total && now() < until) await sleep(5);

received = 0;
const burstStart = now();
for (let i = 0; i < config.burst; i += 1) {
  pub.publish("bench-rtt", `0 ${filler}`);
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
const burstUntil = now() + 30000;
while (received < config.burst && now() < burstUntil) await sleep(2);
const rate = received / ((lastAt - burstStart) / 1000);
await Promise.all([pub.quit(), sub.quit()]);
console.log(JSON.stringify({ samples, burst: config.burst, burst_received: received, burst_rate: rate }));
