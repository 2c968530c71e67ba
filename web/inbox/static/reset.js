// The password page: without a token it asks for a reset link, with one it sets the password.
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (response.ok) return;
  const data = await response.json().catch(() => null);
  throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
}

function finish(message) {
  $("request-form").hidden = true;
  $("confirm-form").hidden = true;
  $("error").hidden = true;
  $("done").textContent = message;
  $("done").hidden = false;
}

function handle(form, submit) {
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await submit(new FormData(form));
    } catch (error) {
      $("error").textContent = error.message;
      $("error").hidden = false;
    }
  });
}

if (token) {
  // The token stays out of the history and of anything this page links to.
  history.replaceState(null, "", location.pathname);
  handle($("confirm-form"), async (data) => {
    await post("/api/auth/password-reset/confirm", { token, new_password: data.get("new_password") });
    localStorage.removeItem("admarket.session");
    finish("Your password is changed and every device is signed out. Log in with the new one.");
  });
} else {
  handle($("request-form"), async (data) => {
    await post("/api/auth/password-reset", { email: data.get("email") });
    finish("If that address has an account, a link is on its way. It works once, for 30 minutes.");
  });
}
