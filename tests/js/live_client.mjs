// Connects with the official socket.io-client exactly as SPEC.md shows and prints every
// event it receives as one JSON line, so a Python test can drive it and read the timings.
// Usage: node live_client.mjs URL TOKEN [LAST_SEQ] ; commands on stdin: "ping", "quit".
import { io } from "socket.io-client";
import readline from "node:readline";

const [url, token, lastSeq] = process.argv.slice(2);
const auth = { token };
if (lastSeq !== undefined && lastSeq !== "") auth.last_seq = Number(lastSeq);

const out = (event, data) =>
  process.stdout.write(JSON.stringify({ event, data, at: Date.now() }) + "\n");

const socket = io(url, { path: "/socket.io", auth, reconnection: false });
socket.on("connect", () => out("connect", { id: socket.id }));
socket.on("connect_error", (err) => out("connect_error", { message: err.message, data: err.data }));
socket.on("connected", (data) => out("connected", data));
socket.on("notification", (data) => out("notification", data));
socket.on("pong", (data) => out("pong", data));
socket.on("disconnect", (reason) => out("disconnect", { reason }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = line.trim();
  if (command === "ping") socket.emit("ping", { timestamp: Date.now() });
  if (command === "quit") {
    socket.close();
    process.exit(0);
  }
});
