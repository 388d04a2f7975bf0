// One saga's page (/ui/sagas/{type}/{id}): its parameters as its type reads them, its status,
// the timeline (the steps of the definition version it runs on, each with every attempt of its
// action, settlement and compensation), every attempt in order, operator actions, log lines.
// Retry and Resolve go to /sagas/{type}/{id}/retry|resolve. Helpers: dashboard.js.
"use strict";

let currentDetail = null;  // {type, id} while a saga's page is shown

// What became of a step, from its attempts: the last compensation decides, else the last
// settlement, else the last action; a step without attempts was not reached (yet).
function stepState(attempts) {
  const last = (role) => attempts.filter((a) => a.role === role).at(-1);
  const compensation = last("compensation");
  const settlement = last("settlement");
  const action = last("action");
  if (compensation) {
    return compensation.outcome === "succeeded" ? "compensated" : "compensating: " + compensation.outcome;
  }
  if (settlement) return "settled: " + (settlement.result || settlement.outcome);
  if (action) return action.outcome === "succeeded" ? "done" : action.outcome;
  return "not reached";
}

function took(a) {
  return a.started_at ? (Date.parse(a.finished_at) - Date.parse(a.started_at)) + " ms" : "";
}

// The definition's steps (the saga's version) or, if this server lacks that version, the steps
// its attempts name, in the order they first appear.
function timelineSteps(view) {
  const definition = (sagaTypes || []).find((t) => t.name === view.saga && t.version === view.version);
  if (definition) return definition.steps;
  return [...new Set(view.attempts.map((a) => a.step))].map((name) => ({ name, kind: "", service: "" }));
}

function renderTimeline(view) {
  $("timeline").replaceChildren(...timelineSteps(view).map((step) => {
    const attempts = view.attempts.filter((a) => a.step === step.name);
    const state = stepState(attempts);
    const item = el("li", null, "tl-step kind-" + step.kind);
    item.dataset.step = step.name;
    item.dataset.state = state;
    const head = el("div", null, "tl-head");
    head.append(el("b", step.name), el("span", step.kind, "kind"), el("span", step.service, "service"),
      el("span", state, "tl-state"));
    const list = el("ol", null, "tl-attempts");
    list.append(...attempts.map((a) => {
      const li = el("li", [a.role, a.operation, "#" + a.attempt, a.outcome, a.status_code ?? "–",
        a.error || a.result || "", took(a), a.publisher ? "by " + a.publisher : ""]
        .filter((x) => x !== "").join(" · "), "tl-attempt " + a.outcome);
      li.dataset.role = a.role;
      li.dataset.outcome = a.outcome;
      return li;
    }));
    item.append(head, list);
    return item;
  }));
}

function renderParams(view) {
  $("d-params").replaceChildren(...Object.entries(sagaParams(view)).flatMap(([key, value]) => {
    const dd = el("dd", paramText(view.saga, key, value));
    dd.dataset.param = key;
    return [el("dt", key), dd];
  }));
}

async function refreshDetail() {
  const detail = currentDetail;
  if (!detail) return;
  const result = await api(sagaPath(detail.type, detail.id));
  $("d-type").textContent = detail.type;
  $("d-id").textContent = detail.id;
  if (!result.ok) { message($("d-message"), errorText(result), false); return; }
  const view = result.body;
  if (!sagaTypes) await loadSagaTypes();
  const status = $("d-status");
  status.textContent = view.status;
  status.className = "state " + view.status;
  status.dataset.state = view.status;
  $("d-summary").textContent = sagaSummary(view);
  renderParams(view);
  $("d-version").textContent = view.saga + " v" + view.version;
  $("d-created").textContent = view.created_at;
  $("d-updated").textContent = view.updated_at;
  $("d-reason").textContent = view.parked_reason || "–";
  $("d-actions").hidden = view.status !== PARKED;
  renderTimeline(view);
  $("attempts").tBodies[0].replaceChildren(...view.attempts.map((a) => {
    const tr = el("tr");
    tr.className = "attempt " + a.outcome;
    tr.append(el("td", a.step), el("td", a.operation), el("td", a.role), el("td", a.attempt),
      el("td", a.outcome), el("td", a.status_code ?? "–"), el("td", a.error || a.result || ""),
      el("td", a.started_at ? new Date(a.started_at).toLocaleTimeString() : ""), el("td", took(a)));
    // choreography: the service that made the call and published its outcome; – when orchestrated
    const publisher = el("td", a.publisher || "–", "publisher");
    if (a.publisher) publisher.dataset.publisher = a.publisher;
    tr.append(publisher);
    return tr;
  }));
  $("operator-actions").replaceChildren(...(view.operator_actions.length
    ? view.operator_actions.map((o) => el("li", o.at + " " + o.action + (o.note ? ": " + o.note : "")))
    : [el("li", "none", "empty")]));
  const logs = await api("/ui/api/transfers/" + encodeURIComponent(detail.id) + "/logs");
  if (logs.ok) {
    $("logs").textContent = logs.body.lines
      .map((l) => l.ts + " " + l.level + " " + l.logger + ": " + l.message).join("\n")
      || "(no log lines kept in this process for this transaction)";
  }
}

async function operate(type, id, action, note, out) {
  const path = sagaPath(type, id) + "/" + action
    + (action === "resolve" && note ? "?note=" + encodeURIComponent(note) : "");
  message(out, action + " " + id + "…", true);
  const result = await api(path, { method: "POST" });
  if (result.ok) message(out, action + " " + id + ": " + result.body.status, true);
  else message(out, errorText(result), false);
  refreshList();
  if (currentDetail && currentDetail.id === id) refreshDetail();
}
