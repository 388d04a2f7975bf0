// sagabank operator dashboard: plain JavaScript, no dependencies, no build step. Four classic
// scripts share one global scope, loaded in this order:
//   dashboard.js      helpers: the JSON API, money, elements, and how a saga of each type reads;
//   saga_list.js      the list view: money, counts by type and state, parked sagas, the list;
//   saga_detail.js    one saga: its parameters, the timeline of its definition's steps, actions;
//   dashboard_app.js  routing, the live event stream, the forms; starts the page.
// Data comes from the JSON API (/sagas, /sagas/{type}/{id}, /ui/api/*); every value from the
// server is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const PARKED = "failed_needs_attention";

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

function sagaPath(type, id) {
  return "/sagas/" + encodeURIComponent(type) + "/" + encodeURIComponent(id);
}

function link(type, id) {
  const a = el("a", id);
  a.href = "/ui" + sagaPath(type, id);
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

// -- how a saga of each type reads ------------------------------------------------------------
// A saga's JSON spreads its parameters beside these fields (saga_types.VIEW_FIELDS on the
// server, which keeps parameters off these names).
const VIEW_FIELDS = new Set(["transaction_id", "saga", "version", "status", "parked_reason",
  "created_at", "updated_at", "attempts", "operator_actions"]);
// Parameters in minor units, per type; any other type's parameters are shown as they come.
const MONEY = { transfer: ["amount"], order: ["total"] };
// One line per known type, used when every parameter it names is there; else the generic one.
const SUMMARIES = {
  transfer: { needs: ["source", "target", "amount"],
    text: (p) => p.source + " → " + p.target + " · " + formatMinor(p.amount) },
  order: { needs: ["order_id", "customer", "merchant", "total", "lines"],
    text: (p) => p.order_id + ": " + p.customer + " → " + p.merchant + " · "
      + formatMinor(p.total) + " · " + orderLines(p.lines) },
};

function orderLines(lines) {
  return Array.isArray(lines) ? lines.map((l) => l.qty + " × " + l.sku).join(", ") : String(lines);
}

function sagaParams(view) {
  return Object.fromEntries(Object.entries(view).filter(([k]) => !VIEW_FIELDS.has(k)));
}

function paramText(type, key, value) {
  if ((MONEY[type] || []).includes(key) && Number.isInteger(value)) return formatMinor(value);
  if (type === "order" && key === "lines") return orderLines(value);
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

function sagaSummary(view) {
  const params = sagaParams(view);
  const known = SUMMARIES[view.saga];
  if (known && known.needs.every((k) => k in params)) return known.text(params);
  return Object.entries(params).map(([k, v]) => k + "=" + paramText(view.saga, k, v)).join(", ");
}
