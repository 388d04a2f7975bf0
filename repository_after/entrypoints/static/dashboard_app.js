// Routing (/ui, /ui/sagas/{type}/{id}, and /ui/transfers/{id} as a transfer's old address), the
// live event stream (/ui/events: each transition updates the row it names and, debounced, the
// views), the forms, and the start of the page. Loaded last: it uses the other three scripts.
"use strict";

const FEED_MAX = 50;
const timers = {};

function debounce(key, fn, ms) {
  clearTimeout(timers[key]);
  timers[key] = setTimeout(fn, ms);
}

function parseRoute(pathname) {
  const saga = pathname.match(/^\/ui\/sagas\/([^/]+)\/(.+)$/);
  if (saga) return { type: decodeURIComponent(saga[1]), id: decodeURIComponent(saga[2]) };
  const transfer = pathname.match(/^\/ui\/transfers\/(.+)$/);
  return transfer ? { type: "transfer", id: decodeURIComponent(transfer[1]) } : null;
}

function route() {
  currentDetail = parseRoute(location.pathname);
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
  const line = el("li", new Date(m.at).toLocaleTimeString() + " " + m.saga + " " + m.transaction_id + " "
    + (m.operation ? m.event + " " + m.operation + (m.outcome ? " → " + m.outcome : "") : m.event)
    + "  [" + m.before + " → " + m.after + "]");
  line.dataset.id = m.transaction_id;
  line.dataset.type = m.saga;
  line.dataset.after = m.after;
  feed.prepend(line);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  const badge = document.querySelector('#sagas tr[data-id="' + CSS.escape(m.transaction_id)
    + '"][data-type="' + CSS.escape(m.saga) + '"] .state');
  if (badge) { badge.textContent = m.after; badge.className = "state " + m.after; badge.dataset.state = m.after; }
  debounce("list", refreshList, 250);
  if (currentDetail && currentDetail.id === m.transaction_id) debounce("detail", refreshDetail, 150);
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

$("type-filter").addEventListener("change", (event) => setFilter(event.target.value, ""));
$("state-filter").addEventListener("change", (event) => setFilter(listFilter.type, event.target.value));

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

$("d-retry").addEventListener("click",
  () => operate(currentDetail.type, currentDetail.id, "retry", "", $("d-message")));
$("d-resolve").addEventListener("click",
  () => operate(currentDetail.type, currentDetail.id, "resolve", $("d-note").value, $("d-message")));

setInterval(() => {
  document.querySelectorAll("[data-since]").forEach((td) => { td.textContent = age(td.dataset.since); });
}, 1000);

route();
connect();
