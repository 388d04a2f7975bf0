// The list view: money, sagas counted by type and state, parked sagas, the latest sagas (every
// type, each row read as its type reads: a transfer's route and amount, an order's customer,
// merchant, total and lines), and the saga types drawn as their steps. Helpers: dashboard.js.
"use strict";

const listFilter = { type: "", state: "" };
let parkedIds = null;
let sagaTypes = null;  // GET /ui/api/saga-types: every registered type, each version's steps

function setFilter(type, state) {
  listFilter.type = type;
  listFilter.state = state;
  $("type-filter").value = type;
  refreshSagas();
}

// The statuses a filter offers come from the counts: GET /sagas counts every status of every
// registered type, zeros included.
function fillFilters(counts) {
  const types = Object.keys(counts);
  const statuses = [...new Set((listFilter.type ? [listFilter.type] : types)
    .flatMap((t) => Object.keys(counts[t] || {})))];
  if (!statuses.includes(listFilter.state)) listFilter.state = "";
  for (const [select, values, chosen] of [
    [$("type-filter"), types, listFilter.type], [$("state-filter"), statuses, listFilter.state]]) {
    const wanted = ["", ...values].join(" ");
    if ([...select.options].map((o) => o.value).join(" ") !== wanted) {
      select.replaceChildren(el("option", "all"), ...values.map((v) => el("option", v)));
      select.options[0].value = "";
    }
    select.value = chosen;
  }
}

function renderCounts(counts) {
  const box = $("counts");
  box.replaceChildren(...Object.entries(counts).map(([type, byState]) => {
    const group = el("div", null, "type-counts");
    group.dataset.type = type;
    const list = el("ul", null, "counts");
    for (const [status, n] of Object.entries(byState)) {
      if (!n) continue;
      const b = el("button");
      b.type = "button";
      b.dataset.state = status;
      b.append(stateBadge(status), " " + n);
      b.addEventListener("click", () => setFilter(type, status));
      const li = el("li");
      li.append(b);
      list.append(li);
    }
    if (!list.children.length) list.append(el("li", "none yet", "empty"));
    group.append(el("b", type), list);
    return group;
  }));
}

async function refreshSagas() {
  const path = listFilter.type ? "/sagas/" + encodeURIComponent(listFilter.type) : "/sagas";
  const query = "?limit=100" + (listFilter.state ? "&status=" + encodeURIComponent(listFilter.state) : "");
  const result = await api(path + query);
  if (!result.ok) return;
  $("sagas").tBodies[0].replaceChildren(...result.body.sagas.map((s) => {
    const tr = el("tr");
    tr.dataset.id = s.transaction_id;
    tr.dataset.type = s.saga;
    const id = el("td"); id.append(link(s.saga, s.transaction_id));
    const state = el("td"); state.append(stateBadge(s.status));
    tr.append(id, el("td", s.saga, "type"), el("td", sagaSummary(s), "summary"), state,
      ageCell(s.created_at), el("td", new Date(s.updated_at).toLocaleTimeString()));
    return tr;
  }));
  const every = listFilter.type ? await api("/sagas?limit=1") : result;
  if (!every.ok) return;
  renderCounts(every.body.counts);
  fillFilters(every.body.counts);
}

async function refreshParked() {
  const result = await api("/sagas?status=" + PARKED + "&limit=100");
  if (!result.ok) return;
  const rows = result.body.sagas;
  $("parked-empty").hidden = rows.length > 0;
  // Re-render only when the set changes, so a live update never wipes a note being typed.
  const ids = rows.map((s) => s.saga + "/" + s.transaction_id).join(" ");
  if (ids === parkedIds) return;
  parkedIds = ids;
  $("parked").tBodies[0].replaceChildren(...rows.map((s) => {
    const tr = el("tr");
    tr.dataset.id = s.transaction_id;
    tr.dataset.type = s.saga;
    const id = el("td"); id.append(link(s.saga, s.transaction_id));
    const note = el("input"); note.placeholder = "resolve note"; note.className = "note";
    const noteCell = el("td"); noteCell.append(note);
    const buttons = el("td");
    const retry = el("button", "Retry", "retry");
    retry.addEventListener("click",
      () => operate(s.saga, s.transaction_id, "retry", "", $("action-result")));
    const resolve = el("button", "Resolve", "resolve");
    resolve.addEventListener("click",
      () => operate(s.saga, s.transaction_id, "resolve", note.value, $("action-result")));
    buttons.append(retry, " ", resolve);
    tr.append(id, el("td", s.saga, "type"), el("td", sagaSummary(s), "summary"),
      ageCell(s.created_at), noteCell, buttons);
    return tr;
  }));
}

async function loadSagaTypes() {
  const result = await api("/ui/api/saga-types");
  if (result.ok) sagaTypes = result.body.saga_types;
  return result;
}

// Each saga type as a row of its steps, in order: name, service, kind, and the operations that
// undo (↩ compensation) or decide (⚖ settlement) the step's action.
async function refreshSagaTypes() {
  const result = await loadSagaTypes();
  const box = $("saga-types");
  if (!result.ok) { box.replaceChildren(el("p", errorText(result), "message error")); return; }
  box.replaceChildren(...sagaTypes.map((t) => {
    const figure = el("figure", null, "saga-type");
    figure.dataset.type = t.name;
    figure.dataset.version = t.version;
    const caption = el("figcaption", t.name + " v" + t.version + (t.latest ? "" : " (older)"));
    figure.append(caption, stepsFigure(t.steps));
    return figure;
  }));
}

function stepsFigure(steps) {
  const list = el("ol", null, "steps");
  for (const s of steps) {
    const item = el("li", null, "step kind-" + s.kind);
    item.dataset.step = s.name;
    item.append(el("b", s.name), el("span", s.service, "service"), el("span", s.kind, "kind"));
    if (s.compensation) item.append(el("small", "↩ " + s.compensation, "compensation"));
    if (s.settlement) item.append(el("small", "⚖ " + s.settlement, "settlement"));
    list.append(item);
  }
  return list;
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
  return Promise.all([refreshSagas(), refreshParked(), refreshBooks()]);
}
