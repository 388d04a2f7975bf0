// sagabank operator dashboard: plain JavaScript, no dependencies, no build step.
// Data comes from the JSON API (/transfers, /transfers/{id}, /ui/api/*); live updates from the
// server-sent events at /ui/events trigger (debounced) reloads of what changed. Every value from
// the server is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const PARKED = "failed_needs_attention";
const FEED_MAX = 50;
let filter = "";
let currentDetail = null;
let parkedIds = null;
const timers = {};

function debounce(key, fn, ms) {
  clearTimeout(timers[key]);
  timers[key] = setTimeout(fn, ms);
}

function token() { return sessionStorage.getItem("sagabank-token") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { ok: response.ok, status: response.status, body };
}

// Money arrives as integer minor units (cents); people read it as 12,345.67. Twin of
// domain/money.py format_minor (tests/unit/test_money_format.py compares the two).
function formatMinor(amount) {
  const n = Number(amount);
  const abs = Math.abs(n);
  const whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (n < 0 ? "-" : "") + whole + "." + String(abs % 100).padStart(2, "0");
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function stateBadge(status) {
  const badge = el("span", status, "state " + status);
  badge.dataset.state = status;
  return badge;
}

function age(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return Math.floor(seconds) + "s";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m " + Math.floor(seconds % 60) + "s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
  return Math.floor(seconds / 86400) + "d";
}

function ageCell(iso) {
  const td = el("td", age(iso), "age");
  td.dataset.since = iso;
  return td;
}

function link(id) {
  const a = el("a", id);
  a.href = "/ui/transfers/" + encodeURIComponent(id);
  a.dataset.nav = "";
  return a;
}

function message(node, text, ok) {
  node.textContent = text;
  node.className = "message " + (ok ? "ok" : "error");
}

function errorText(result) {
  const b = result.body || {};
  return (b.error ? b.error + ": " : "HTTP " + result.status + ": ") + (b.message || "");
}

// -- list view --------------------------------------------------------------------------

async function refreshTransfers() {
  const query = "/transfers?limit=100" + (filter ? "&state=" + encodeURIComponent(filter) : "");
  const result = await api(query);
  if (!result.ok) return;
  const tbody = $("transfers").tBodies[0];
  tbody.replaceChildren(...result.body.transfers.map((t) => {
    const tr = el("tr");
    tr.dataset.id = t.transaction_id;
    const id = el("td"); id.append(link(t.transaction_id));
    const state = el("td"); state.append(stateBadge(t.status));
    tr.append(id, el("td", t.source + " → " + t.target), el("td", formatMinor(t.amount), "num"), state,
      ageCell(t.created_at), el("td", new Date(t.updated_at).toLocaleTimeString()));
    return tr;
  }));
  const counts = $("counts");
  const entries = Object.entries(result.body.counts).sort();
  counts.replaceChildren(...entries.map(([status, n]) => {
    const li = el("li");
    const b = el("button");
    b.type = "button";
    b.dataset.state = status;
    b.append(stateBadge(status), " " + n);
    b.addEventListener("click", () => { $("state-filter").value = status; setFilter(status); });
    li.append(b);
    return li;
  }));
  if (!entries.length) counts.append(el("li", "no sagas yet", "empty"));
}

async function refreshParked() {
  const result = await api("/transfers?state=" + PARKED + "&limit=100");
  if (!result.ok) return;
  const rows = result.body.transfers;
  $("parked-empty").hidden = rows.length > 0;
  // Re-render only when the set changes, so a live update never wipes a note being typed.
  const ids = rows.map((t) => t.transaction_id).join(" ");
  if (ids === parkedIds) return;
  parkedIds = ids;
  $("parked").tBodies[0].replaceChildren(...rows.map((t) => {
    const tr = el("tr");
    tr.dataset.id = t.transaction_id;
    const id = el("td"); id.append(link(t.transaction_id));
    const note = el("input"); note.placeholder = "resolve note"; note.className = "note";
    const noteCell = el("td"); noteCell.append(note);
    const buttons = el("td");
    const retry = el("button", "Retry", "retry");
    retry.addEventListener("click", () => operate(t.transaction_id, "retry", "", $("action-result")));
    const resolve = el("button", "Resolve", "resolve");
    resolve.addEventListener("click",
      () => operate(t.transaction_id, "resolve", note.value, $("action-result")));
    buttons.append(retry, " ", resolve);
    tr.append(id, el("td", t.source + " → " + t.target + " · " + formatMinor(t.amount)), ageCell(t.created_at),
      noteCell, buttons);
    return tr;
  }));
}

// Each saga type as a row of its steps, in order: name, service, kind, and the operations that
// undo (↩ compensation) or decide (⚖ settlement) the step's action.
async function refreshSagaTypes() {
  const result = await api("/ui/api/saga-types");
  const box = $("saga-types");
  if (!result.ok) { box.replaceChildren(el("p", errorText(result), "message error")); return; }
  box.replaceChildren(...result.body.saga_types.map((t) => {
    const figure = el("figure", null, "saga-type");
    figure.dataset.type = t.name;
    figure.dataset.version = t.version;
    const caption = el("figcaption", t.name + " v" + t.version + (t.latest ? "" : " (older)"));
    const steps = el("ol", null, "steps");
    for (const s of t.steps) {
      const item = el("li", null, "step kind-" + s.kind);
      item.dataset.step = s.name;
      item.append(el("b", s.name), el("span", s.service, "service"), el("span", s.kind, "kind"));
      if (s.compensation) item.append(el("small", "↩ " + s.compensation, "compensation"));
      if (s.settlement) item.append(el("small", "⚖ " + s.settlement, "settlement"));
      steps.append(item);
    }
    figure.append(caption, steps);
    return figure;
  }));
}

async function refreshBooks() {
  const result = await api("/ui/api/books");
  const indicator = $("conservation");
  if (!result.ok) {
    indicator.textContent = "account service unreachable";
    indicator.className = "indicator bad";
    return;
  }
  const { audit, accounts, total } = result.body;
  $("total-balance").textContent = formatMinor(total);
  $("total-opened").textContent = formatMinor(audit.total_opened);
  // Reconciled with the saga log (role all): "in flight" is what running sagas own, and any
  // failure is red, orphans named first. Not reconciled (a separate account service): a
  // running transfer alone still reads as not conserved, so that case stays amber.
  const reconciled = audit.reconciled === true;
  $("in-flight").textContent = reconciled ? audit.owned_in_flight : audit.in_flight;
  $("account-count").textContent = audit.accounts;
  const onlyInFlight = audit.violations.every((v) => v.startsWith("not_conserved"))
    && audit.total_balance + audit.in_flight === audit.total_opened;
  if (audit.ok) {
    indicator.textContent = reconciled && audit.owned_in_flight
      ? "✓ money conserved, " + audit.owned_in_flight + " in flight in running sagas"
      : "✓ money conserved";
    indicator.className = "indicator ok";
  } else if (!reconciled && onlyInFlight) {
    indicator.textContent = "conserved, " + audit.in_flight + " in flight (not reconciled)";
    indicator.className = "indicator warn";
  } else {
    const orphans = reconciled && audit.orphans.length
      ? "orphaned money (no saga owns it): " + audit.orphans.join(", ") + " — "
      : "";
    indicator.textContent = "✗ audit: " + orphans + audit.violations.join("; ");
    indicator.className = "indicator bad";
  }
  indicator.dataset.ok = String(audit.ok);
  $("accounts").tBodies[0].replaceChildren(...accounts.map((a) => {
    const tr = el("tr");
    tr.append(el("td", a.account_id), el("td", formatMinor(a.balance), "num"));
    return tr;
  }));
}

function refreshList() {
  return Promise.all([refreshTransfers(), refreshParked(), refreshBooks()]);
}

function setFilter(value) {
  filter = value;
  refreshTransfers();
}

// -- detail view ------------------------------------------------------------------------

async function refreshDetail() {
  const id = currentDetail;
  if (!id) return;
  const result = await api("/transfers/" + encodeURIComponent(id));
  $("d-id").textContent = id;
  if (!result.ok) { message($("d-message"), errorText(result), false); return; }
  const t = result.body;
  const status = $("d-status");
  status.textContent = t.status;
  status.className = "state " + t.status;
  status.dataset.state = t.status;
  $("d-route").textContent = t.source + " → " + t.target;
  $("d-amount").textContent = formatMinor(t.amount);
  $("d-created").textContent = t.created_at;
  $("d-updated").textContent = t.updated_at;
  $("d-reason").textContent = t.parked_reason || "–";
  $("d-actions").hidden = t.status !== PARKED;
  $("attempts").tBodies[0].replaceChildren(...t.attempts.map((a) => {
    const tr = el("tr");
    tr.className = "attempt " + a.outcome;
    const took = a.started_at ? (Date.parse(a.finished_at) - Date.parse(a.started_at)) + " ms" : "";
    tr.append(el("td", a.step), el("td", a.operation), el("td", a.role), el("td", a.attempt),
      el("td", a.outcome), el("td", a.status_code ?? "–"), el("td", a.error || a.result || ""),
      el("td", a.started_at ? new Date(a.started_at).toLocaleTimeString() : ""), el("td", took));
    return tr;
  }));
  $("operator-actions").replaceChildren(...(t.operator_actions.length
    ? t.operator_actions.map((o) => el("li", o.at + " " + o.action + (o.note ? ": " + o.note : "")))
    : [el("li", "none", "empty")]));
  const logs = await api("/ui/api/transfers/" + encodeURIComponent(id) + "/logs");
  if (logs.ok) {
    $("logs").textContent = logs.body.lines
      .map((l) => l.ts + " " + l.level + " " + l.logger + ": " + l.message).join("\n")
      || "(no log lines kept in this process for this transaction)";
  }
}

async function operate(id, action, note, out) {
  const path = "/transfers/" + encodeURIComponent(id) + "/" + action
    + (action === "resolve" && note ? "?note=" + encodeURIComponent(note) : "");
  message(out, action + " " + id + "…", true);
  const result = await api(path, { method: "POST" });
  if (result.ok) message(out, action + " " + id + ": " + result.body.status, true);
  else message(out, errorText(result), false);
  refreshList();
  if (currentDetail === id) refreshDetail();
}

// -- routing, live events, forms ----------------------------------------------------------

function route() {
  const match = location.pathname.match(/^\/ui\/transfers\/(.+)$/);
  currentDetail = match ? decodeURIComponent(match[1]) : null;
  $("list-view").hidden = Boolean(currentDetail);
  $("detail-view").hidden = !currentDetail;
  $("d-message").textContent = "";
  if (currentDetail) refreshDetail(); else { refreshList(); refreshSagaTypes(); }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);

function onTransition(m) {
  const feed = $("feed");
  const line = el("li", new Date(m.at).toLocaleTimeString() + " " + m.transaction_id + " "
    + (m.operation ? m.event + " " + m.operation + (m.outcome ? " → " + m.outcome : "") : m.event)
    + "  [" + m.before + " → " + m.after + "]");
  line.dataset.id = m.transaction_id;
  line.dataset.after = m.after;
  feed.prepend(line);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  const badge = document.querySelector('#transfers tr[data-id="' + CSS.escape(m.transaction_id)
    + '"] .state');
  if (badge) { badge.textContent = m.after; badge.className = "state " + m.after; badge.dataset.state = m.after; }
  debounce("list", refreshList, 250);
  if (currentDetail === m.transaction_id) debounce("detail", refreshDetail, 150);
}

let source = null;
function connect() {
  if (source) source.close();  // a new token: reconnect with it
  // EventSource cannot send an Authorization header: the server takes the token as ?token= here only.
  source = new EventSource(token() ? "/ui/events?token=" + encodeURIComponent(token()) : "/ui/events");
  source.addEventListener("open", () => {
    $("live").textContent = "live";
    $("live").className = "live on";
    route();
  });
  source.addEventListener("error", () => {
    $("live").textContent = "reconnecting…";
    $("live").className = "live off";
  });
  source.addEventListener("transition", (event) => onTransition(JSON.parse(event.data)));
  source.addEventListener("resync", () => route());
}

$("state-filter").addEventListener("change", (event) => setFilter(event.target.value));

$("transfer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const id = "ui-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
  const body = { source: form.source.value, target: form.target.value, amount: Number(form.amount.value) };
  message($("transfer-result"), "started " + id, true);
  const result = await api("/transfers", {
    method: "POST",
    headers: { "content-type": "application/json", "transaction-id": id },
    body: JSON.stringify(body),
  });
  if (result.ok) message($("transfer-result"), id + ": " + result.body.status, true);
  else message($("transfer-result"), errorText(result), false);
});

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("sagabank-token", $("token").value);
  $("token").value = "";
  $("token-state").textContent = token() ? "token set" : "no token";
  connect();  // the stream and, on open, the page's reads now carry the token
});
$("token-state").textContent = token() ? "token set" : "no token";

$("d-retry").addEventListener("click", () => operate(currentDetail, "retry", "", $("d-message")));
$("d-resolve").addEventListener("click",
  () => operate(currentDetail, "resolve", $("d-note").value, $("d-message")));

setInterval(() => {
  document.querySelectorAll("[data-since]").forEach((td) => { td.textContent = age(td.dataset.since); });
}, 1000);

route();
connect();
