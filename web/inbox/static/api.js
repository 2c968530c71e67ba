// REST calls with the session's access token, refreshed before it expires and once on a 401.
const SESSION_KEY = "admarket.session";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
  }
}

export const session = {
  load() {
    try {
      return JSON.parse(localStorage.getItem(SESSION_KEY)) || null;
    } catch {
      return null;
    }
  },
  save(value) {
    localStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    localStorage.removeItem(SESSION_KEY);
  },
};

// The `exp` claim of a JWT in milliseconds, or 0 if it cannot be read.
export function expiresAt(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return 0;
  }
}

async function send(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

let refreshing = null;

// Trade the refresh token for a new access token; concurrent callers share one request.
export function refreshAccess() {
  if (!refreshing) {
    const current = session.load();
    refreshing = (async () => {
      if (!current || !current.refresh_token) throw new ApiError(401, null);
      const data = await send("POST", "/api/auth/refresh", { refresh_token: current.refresh_token });
      // Each refresh retires the token it was given: keep the next one (another tab reads it).
      session.save({
        ...session.load(),
        access_token: data.access_token,
        refresh_token: data.refresh_token || current.refresh_token,
      });
      window.dispatchEvent(new CustomEvent("admarket:token", { detail: data.access_token }));
      return data.access_token;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// A signed-in call; an expired token is refreshed and the call made once more.
export async function api(method, path, body) {
  const current = session.load();
  try {
    return await send(method, path, body, current && current.access_token);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || !current) throw error;
    return send(method, path, body, await refreshAccess());
  }
}

export async function signIn(email, password) {
  const tokens = await send("POST", "/api/auth/login", { email, password });
  session.save({ access_token: tokens.access_token, refresh_token: tokens.refresh_token });
  const user = await api("GET", "/api/users/me");
  session.save({ ...session.load(), user });
  return user;
}

export async function signUp(fields) {
  const data = await send("POST", "/api/auth/register", fields);
  session.save({
    access_token: data.access_token,
    refresh_token: data.refresh_token,
    user: data.user,
  });
  return data.user;
}

// End this login on the server too: its tokens stop working and its other sockets are dropped.
// Best effort: signing out locally must work even when the server cannot be reached.
export async function logOut() {
  const current = session.load();
  if (!current || !current.refresh_token) return;
  try {
    await send("POST", "/api/auth/logout", { refresh_token: current.refresh_token });
  } catch {
    // Already ended, expired, or the server is away: the local session goes anyway.
  }
}

// Whether an error means the session is over (the refresh token was refused), not a network hiccup.
export function signedOut(error) {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}

// Refresh the access token a little before it expires, for as long as the page is open.
// A refused refresh token signs out; a server that is away (a restart) is asked again shortly.
export function keepFresh(onSignedOut) {
  let timer = null;
  const attempt = () =>
    refreshAccess().then(plan, (error) => {
      if (signedOut(error)) onSignedOut(error);
      else timer = setTimeout(attempt, 3_000);
    });
  const plan = () => {
    clearTimeout(timer);
    const current = session.load();
    if (!current || !current.access_token) return;
    const exp = expiresAt(current.access_token);
    const lifetime = Math.max(exp - Date.now(), 0);
    // At 80% of what is left (at most a minute early), so a sleeping tab still wakes in time.
    const wait = Math.max(lifetime - Math.min(60_000, lifetime * 0.2), 1_000);
    timer = setTimeout(attempt, wait);
  };
  window.addEventListener("admarket:token", plan);
  plan();
  return () => clearTimeout(timer);
}
