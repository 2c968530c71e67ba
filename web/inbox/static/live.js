// Live notifications over the official socket.io-client; REST polling when it is not installed.
const POLL_MS = 5000;

// Start listening; `hooks` are onNotification(n), onState(state, detail), getToken(),
// getLastSeq(), refresh() (a promise of a new token), signedOut(error), onSignedOut(error) and,
// for polling, fetchAfter(seq). Returns {restart(), close()}.
export async function startLive(moduleUrl, hooks) {
  if (!moduleUrl) return startPolling(hooks);
  let io;
  try {
    ({ io } = await import(moduleUrl));
  } catch (error) {
    hooks.onState("polling", `socket.io-client did not load (${error.message})`);
    return startPolling(hooks);
  }
  // `auth` as a function is called before every (re)connection: the newest token and last seq.
  const socket = io({
    path: "/socket.io",
    auth: (cb) => cb({ token: hooks.getToken(), last_seq: hooks.getLastSeq() }),
    reconnectionDelayMax: 5000,
  });
  const renewAndConnect = async () => {
    try {
      await hooks.refresh();
      socket.connect();
    } catch (error) {
      if (hooks.signedOut(error)) return hooks.onSignedOut(error);
      // The server is away (restarting): try again shortly, as the client itself would.
      hooks.onState("reconnecting", error.message);
      setTimeout(renewAndConnect, 3000);
    }
  };
  // The server accepts only a valid token, so `connect` means live; its `connected` greeting may
  // arrive first (the client hands buffered events out before it fires `connect`).
  socket.on("connect", () => hooks.onState("live"));
  socket.on("connected", () => hooks.onState("live"));
  socket.on("notification", (n) => hooks.onNotification(n));
  socket.on("disconnect", (reason) => {
    hooks.onState("reconnecting", reason);
    // The server hangs up when the access token expires; the client does not retry that itself.
    if (reason === "io server disconnect") renewAndConnect();
  });
  socket.on("connect_error", (error) => {
    const code = error.data && error.data.code;
    if (!socket.active && code && code.startsWith("token_")) {
      renewAndConnect();
    } else {
      hooks.onState("reconnecting", error.message);
    }
  });
  return {
    restart() {
      socket.disconnect();
      socket.connect();
    },
    close() {
      socket.close();
    },
  };
}

// Without the client library: ask the REST API for everything after the last seq, every few seconds.
function startPolling(hooks) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      const after = hooks.getLastSeq();
      const items = await hooks.fetchAfter(after);
      items.forEach((n) => hooks.onNotification(n));
      hooks.onState("polling");
    } catch (error) {
      hooks.onState("reconnecting", error.message);
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return {
    restart() {},
    close() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
