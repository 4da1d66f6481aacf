// Family Story demo front end: sign in, your tools, your story. No build step, no external assets.
"use strict";

const state = { token: sessionStorage.getItem("fs-token"), me: null, caseId: null };
const $ = (id) => document.getElementById(id);

function say(text) { $("status").textContent = text || ""; }

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401 && path !== "/api/session") { signedOut(); }
  if (!resp.ok) { const err = new Error(data.detail || data.title || "Something went wrong."); err.status = resp.status; throw err; }
  return data;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

async function loadLogins() {
  const select = $("login");
  select.replaceChildren();
  try {
    const people = await api("GET", "/api/session/demo-people");
    for (const p of people.items) {
      const option = el("option", `${p.display_name} (${p.kind.replace("_", " ")}${p.council_id ? ", " + p.council_id : ""})`);
      option.value = p.login;
      select.append(option);
    }
  } catch (e) {
    say("Demo sign-in is not available here.");
    $("sign-in-form").hidden = true;
  }
}

function signedOut() {
  state.token = null; state.me = null; state.caseId = null;
  sessionStorage.removeItem("fs-token");
  $("sign-in").hidden = false; $("tools").hidden = true; $("timeline").hidden = true;
  $("who").hidden = true; $("sign-out").hidden = true;
  loadLogins();
}

async function signedIn() {
  state.me = await api("GET", "/api/me");
  $("who").textContent = `Signed in as ${state.me.display_name}`;
  $("who").hidden = false; $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  const tools = await api("GET", "/api/tools");
  const list = $("tool-list");
  list.replaceChildren();
  for (const t of tools.items) {
    const li = el("li");
    li.append(el("h3", t.name), el("p", t.summary), el("p", "Version " + t.version, "meta"));
    list.append(li);
  }
  if (!tools.items.length) list.append(el("li", "Your council has not switched on any tools for you yet."));
  $("tools").hidden = false;
  const hasTimeline = tools.items.some((t) => t.tool_id === "timeline");
  state.caseId = state.me.cases.length ? state.me.cases[0].case_id : null;
  if (hasTimeline && state.caseId) {
    $("timeline").hidden = false;
    $("case-label").textContent = "Case " + state.caseId;
    $("note-form").hidden = state.me.kind !== "family";
    await loadEntries();
  } else {
    $("timeline").hidden = true;
  }
  $("tools-title").focus();
}

async function loadEntries() {
  const page = await api("GET", `/api/tools/timeline/cases/${encodeURIComponent(state.caseId)}/entries`);
  const list = $("entries");
  list.replaceChildren();
  for (const entry of page.items) {
    const li = el("li");
    li.append(el("h4", entry.title), el("p", `${entry.kind.replace("_", " ")} · ${when(entry.occurred_at)}`, "meta"));
    if (entry.body) li.append(el("p", entry.body));
    list.append(li);
  }
  if (!page.items.length) list.append(el("li", "Nothing on your timeline yet."));
}

document.addEventListener("DOMContentLoaded", () => {
  $("tools-title").tabIndex = -1;
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    try {
      const session = await api("POST", "/api/session", { login: $("login").value });
      state.token = session.token;
      sessionStorage.setItem("fs-token", session.token);
      await signedIn();
    } catch (e) { say(e.message); }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/api/session"); } catch (e) { /* signed out either way */ }
    signedOut();
    say("You are signed out.");
  });
  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = $("note-body").value.trim();
    const note = { kind: "family_note", title: $("note-title").value.trim(), occurred_at: new Date().toISOString() };
    if (body) note.body = body;
    try {
      await api("POST", `/api/tools/timeline/cases/${encodeURIComponent(state.caseId)}/entries`, note);
      $("note-form").reset();
      say("Your note was added.");
      await loadEntries();
    } catch (e) { say(e.message); }
  });
  if (state.token) { signedIn().catch((e) => { say(e.message); }); } else { signedOut(); }
});
