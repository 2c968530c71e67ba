// One load-generator process: a swarm of official socket.io-client sockets, driven over stdio.
//
// Commands arrive as JSON lines on stdin and each gets one JSON line back on stdout:
//   {"cmd": "connect", "url": U, "clients": [[index, token], …], "concurrency": 100}
//   {"cmd": "reset", "sample": true}    zero the counters; keep latency samples if sample
//   {"cmd": "stats", "samples": true}   counters (and the latency samples, ms)
//   {"cmd": "keep_below", "n": N}       close every socket whose index is N or more
//   {"cmd": "quit"}
// A `notification` whose data carries `t` (or a campaign_title "b4 <t>") is timed from `t`,
// the epoch-millisecond time its sender had scheduled it for: open-loop latency.
import readline from "node:readline";
import { io } from "socket.io-client";

const now = () => performance.timeOrigin + performance.now();
const sockets = new Map();
let received = 0;
let firstAt = 0;
let lastAt = 0;
let sampling = false;
let samples = [];
let drops = 0;
const dropReasons = {};

function scheduledAt(note) {
  const data = note && note.data;
  if (!data) return undefined;
  if (typeof data.t === "number") return data.t;
  const title = data.campaign_title;
  if (typeof title === "string" && title.startsWith("b4 ")) return Number(title.slice(3));
  return undefined;
}

function onNotification(note) {
  const at = now();
  received += 1;
  if (!firstAt) firstAt = at;
  lastAt = at;
  if (sampling) {
    const t = scheduledAt(note);
    if (t !== undefined) samples.push(at - t);
  }
}

function connectOne(url, index, token) {
  return new Promise((resolve) => {
    const socket = io(url, {
      path: "/socket.io",
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: 30000,
      auth: { token },
    });
    const timer = setTimeout(() => finish(false, "no connected event in 30 s"), 30000);
    function finish(ok, why) {
      clearTimeout(timer);
      if (ok) {
        sockets.set(index, socket);
      } else {
        socket.removeAllListeners();
        socket.close();
      }
      resolve(ok ? null : why);
    }
    socket.on("notification", onNotification);
    socket.once("connected", () => finish(true));
    socket.once("connect_error", (err) => finish(false, err.message));
    socket.on("disconnect", (reason) => {
      if (sockets.get(index) === socket) {
        sockets.delete(index);
        drops += 1;
        dropReasons[reason] = (dropReasons[reason] || 0) + 1;
      }
    });
  });
}

async function connect({ url, clients, concurrency = 100 }) {
  const started = now();
  const errors = {};
  let failed = 0;
  let next = 0;
  async function lane() {
    while (next < clients.length) {
      const [index, token] = clients[next++];
      const why = await connectOne(url, index, token);
      if (why !== null) {
        failed += 1;
        errors[why] = (errors[why] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, lane));
  return { open: sockets.size, failed, errors, ms: now() - started };
}

// Clients leave 100 per 400 ms per process (~1,000/s from four): an exodus, not one instant.
async function keepBelow({ n }) {
  let closed = 0;
  for (const [index, socket] of sockets) {
    if (index >= n) {
      sockets.delete(index);
      socket.removeAllListeners();
      socket.close();
      closed += 1;
      if (closed % 100 === 0) await new Promise((r) => setTimeout(r, 400));
    }
  }
  return { open: sockets.size };
}

function stats({ samples: withSamples = false }) {
  const out = { received, first_at: firstAt, last_at: lastAt, open: sockets.size, drops, drop_reasons: dropReasons };
  if (withSamples) out.samples = samples.map((x) => Math.round(x * 1000) / 1000);
  return out;
}

function reset({ sample = false }) {
  received = 0;
  firstAt = 0;
  lastAt = 0;
  samples = [];
  sampling = sample;
  return { ok: true };
}

const handlers = { connect, keep_below: keepBelow, stats, reset, quit: () => setTimeout(() => process.exit(0), 10) };
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const command = JSON.parse(line);
  try {
    const result = await handlers[command.cmd](command);
    process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack) }) + "\n");
  }
});
lines.on("close", () => process.exit(0));
