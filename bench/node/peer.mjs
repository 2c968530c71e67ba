// The peer: the reference Node.js socket.io server a team would otherwise pick, on Redis.
//
//   node peer.mjs '{"port": 5100, "redisUrl": "redis://127.0.0.1:6379/0", "secret": "…"}'
//
// socket.io 4 with @socket.io/redis-adapter, the same JWT handshake as the platform (auth.token,
// HS256, typ "access"), each socket in the room `user:<id>` and greeted with `connected`.
// POST /api/campaigns is the B4 stand-in for the platform's API: it checks the bearer token and
// publishes the notification with @socket.io/redis-emitter, so it reaches the socket through
// Redis and the adapter as a worker's emit would (no database, no task queue).
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import jwt from "jsonwebtoken";

const config = JSON.parse(process.argv[2]);
const verify = (token) => {
  const claims = jwt.verify(token, config.secret, { algorithms: ["HS256"] });
  if (claims.typ !== "access" || typeof claims.sub !== "string") throw new Error("token_invalid");
  return claims.sub;
};

const pub = createClient({ url: config.redisUrl });
const sub = pub.duplicate();
const emitterClient = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
const emitter = new Emitter(emitterClient);

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "ok", websocket: { connections: io.engine.clientsCount } }));
    return;
  }
  if (req.method === "POST" && req.url === "/api/campaigns") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        verify((req.headers.authorization || "").replace(/^Bearer /, ""));
        const body = JSON.parse(Buffer.concat(chunks).toString());
        const id = randomUUID();
        emitter.to(`user:${body.owner_id}`).emit("notification", {
          id,
          seq: 1,
          type: "new_campaign",
          title: "New campaign request",
          message: `A new campaign request: ${body.title}`,
          campaign_id: id,
          data: { campaign_id: id, campaign_title: body.title, channel_id: body.channel_id },
          timestamp: new Date().toISOString(),
        });
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ id, status: "pending", title: body.title }));
      } catch (err) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "unauthorized", message: String(err) } }));
      }
    });
    return;
  }
  res.writeHead(404).end();
});

const io = new Server(server, { adapter: createAdapter(pub, sub), serveClient: false });
io.use((socket, next) => {
  try {
    socket.data.userId = verify(socket.handshake.auth?.token);
    next();
  } catch (err) {
    next(new Error(`refused: ${err.message}`));
  }
});
io.on("connection", (socket) => {
  socket.join(`user:${socket.data.userId}`);
  socket.emit("connected", { status: "ok", user_id: socket.data.userId });
});

server.listen(config.port, "127.0.0.1", () => console.log(`peer listening on ${config.port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
