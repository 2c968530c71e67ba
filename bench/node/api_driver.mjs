// Open-loop HTTP load: POSTs at a fixed rate, each titled with its scheduled send time.
//
//   node api_driver.mjs CONFIG.json
// CONFIG.json: {"url": "http://127.0.0.1:5000/api/campaigns", "tokens": [...], "bodies": [...],
// "rate": R, "seconds": S, "delay": D, "maxSockets": 128, "connectionPerCall": true}.
// connectionPerCall: each call opens its own TCP connection, as a crowd of users' calls do;
// otherwise calls share a keep-alive pool of maxSockets connections.
// Request i is scheduled for go + delay + i / R whether or not earlier ones have answered; its body
// is bodies[i % n] with title "b4 <scheduled epoch ms>", so the receiving socket can time it.
// Prints one JSON line: statuses, response-time samples (from the schedule) and scheduler lag.
import { config, waitForGo } from "./helper.mjs";
import http from "node:http";

const target = new URL(config.url);
const agent = config.connectionPerCall
  ? new http.Agent({ keepAlive: false, maxSockets: Infinity })
  : new http.Agent({ keepAlive: true, maxSockets: config.maxSockets || 128 });
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const total = Math.round(config.rate * config.seconds);
const statuses = {};
const responses = [];
const byStatus = {};
let maxLag = 0;
let pending = 0;

function post(i, t) {
  const body = JSON.stringify({ ...config.bodies[i % config.bodies.length], title: `b4 ${t}` });
  pending += 1;
  const req = http.request(
    {
      agent,
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        authorization: `Bearer ${config.tokens[i % config.tokens.length]}`,
      },
      timeout: 30000,
    },
    (res) => {
      res.resume();
      res.on("end", () => {
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        responses.push(now() - t);
        (byStatus[res.statusCode] ||= []).push(Math.round((now() - t) * 10) / 10);
        pending -= 1;
      });
    },
  );
  req.on("error", (err) => {
    statuses[err.code || "error"] = (statuses[err.code || "error"] || 0) + 1;
    pending -= 1;
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.end(body);
}

const startAt = await waitForGo();
while (now() < startAt) await sleep(Math.min(5, startAt - now()));
const period = 1000 / config.rate;
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor((now() - startAt) / period) + 1);
  for (; sent < due; sent++) {
    const t = startAt + sent * period;
    maxLag = Math.max(maxLag, now() - t);
    post(sent, t);
  }
  await sleep(1);
}
const deadline = now() + 35000;
while (pending > 0 && now() < deadline) await sleep(10);
agent.destroy();
const out = JSON.stringify({
  sent,
  statuses,
  max_lag_ms: maxLag,
  responses: responses.map((x) => Math.round(x * 10) / 10),
  responses_by_status: byStatus,
  unanswered: pending,
});
// Exit only once the pipe took everything: process.exit() would cut a long line short.
process.stdout.write(out + "\n", () => process.exit(0));
