// Chat Kokpit: the supervisors' screen. Built only on the public GraphQL API (POST /graphql
// for queries and mutations, graphql-transport-ws on /graphql/ws for the live cockpit), so
// it is also the reference client for frontend developers. No framework, no build step.
"use strict";

const STATUSES = ["ONLINE", "BREAK", "INVISIBLE", "OFFLINE"];
const CHANNELS = ["LIVE_CHAT", "IN_APP", "WHATSAPP", "FACEBOOK", "INSTAGRAM", "TWITTER"];
const TOKEN_KEY = "cockpit.token";
const LANG_KEY = "cockpit.lang";
const PRODUCT_KEY = "cockpit.product";
// Reconnect backoff: doubled after each failure, capped, reset after a good connection.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
// The search is sent after this pause in typing (every letter still filters).
const SEARCH_DEBOUNCE_MS = 150;

const TEXT = {
  tr: {
    title: "Chat Kokpit",
    product: "Ürün",
    channel: "Kanal",
    allChannels: "Tüm kanallar",
    search: "İsim ara",
    searchHint: "Kullanıcı adı…",
    myStatus: "Durumum",
    signOut: "Çıkış",
    signIn: "Giriş",
    pasteToken: "Erişim anahtarınızı (token) yapıştırın",
    signInButton: "Giriş yap",
    agentOnly: "Temsilci olarak yalnızca kendi durumunuzu görebilir ve değiştirebilirsiniz.",
    statusSince: "Bu statüde",
    ONLINE: "Çevrimiçi",
    BREAK: "Mola",
    INVISIBLE: "Görünmez",
    OFFLINE: "Çevrimdışı",
    LIVE_CHAT: "Canlı Sohbet",
    IN_APP: "Uygulama İçi",
    WHATSAPP: "WhatsApp",
    FACEBOOK: "Facebook Messenger",
    INSTAGRAM: "Instagram DM",
    TWITTER: "Twitter",
    colName: "Kullanıcı Adı",
    colStatus: "Kullanıcı Statüsü",
    colInStatus: "Statüde Geçen Süre",
    colFirst: "Ortalama İlk Yanıt Süresi",
    colResolution: "Ortalama Çözüm Süresi",
    // Soft hyphens (\u00AD): long Turkish words break at a syllable in narrow headings.
    colActive: "Aktif Konuş\u00ADmalar",
    colResolved: "Çözülen Konuş\u00ADmalar",
    colReactivated: "Arşivden Aktife Taşınan\u00ADlar",
    colForwarded: "Yönlen\u00ADdirilen Konuş\u00ADmalar",
    colOnlineToday: "Bugün Çevrimiçi",
    colBreakToday: "Bugün Molada",
    colUnanswered: "Yanıt Bekleyen (en uzun)",
    colOverdue: "Hedefi Aşan İlk Yanıtlar",
    colServiceLevel: "Hizmet Düzeyi (hedef içinde)",
    todayTitle: "Bugün: çevrimiçi {online}, mola {onBreak}, görünmez {invisible}, çevrimdışı {offline}",
    serviceLevelTitle: "İlk yanıtların {within} tanesi hedef içinde; hedefi aşan {overdue} atama bekliyor",
    queue: "Kuyruk: {n}",
    queueOldest: "Kuyruk: {n} (en eski {wait})",
    target: "İlk yanıt hedefi: {target}",
    colChange: "Statü Değiştir",
    change: "Değiştir…",
    empty: "Bu statüde temsilci yok",
    day: "Gün",
    refreshed: "Günlük sütunlar: {time} ({ago} önce)",
    connOpen: "Canlı",
    connConnecting: "Bağlanıyor…",
    connDown: "Bağlantı yok",
    warnDown: "Sunucuyla bağlantı koptu; yeniden bağlanılıyor. Ekrandaki değerler güncel olmayabilir.",
    warnStale: "Günlük sütunlar {ago} önce güncellendi (beklenen: her {interval}). Değerler eski olabilir.",
    noToken: "Devam etmek için erişim anahtarınızı yapıştırın.",
    expired: "Oturumunuzun süresi doldu. Yeni bir erişim anahtarıyla giriş yapın.",
    malformed: "Bu bir erişim anahtarına (JWT) benzemiyor.",
    noProducts: "Bu organizasyonda henüz ürün yok.",
    UNAUTHENTICATED: "Erişim anahtarı reddedildi (geçersiz, süresi dolmuş ya da bu organizasyonda böyle bir kullanıcı yok).",
    FORBIDDEN: "Bu işlem için yetkiniz yok.",
    NOT_FOUND: "Aranan kayıt bulunamadı.",
    AGENT_OFFLINE: "Çevrimdışı bir temsilcinin statüsünü yalnızca kendisi değiştirebilir.",
    BAD_USER_INPUT: "Girilen değer geçersiz.",
    GRAPHQL_VALIDATION_FAILED: "İstek sunucu tarafından kabul edilmedi.",
    GRAPHQL_PARSE_FAILED: "İstek sunucu tarafından okunamadı.",
    INTERNAL_SERVER_ERROR: "Sunucuda beklenmeyen bir hata oluştu; lütfen tekrar deneyin.",
    NETWORK: "Sunucuya ulaşılamadı; bağlantınızı kontrol edip tekrar deneyin.",
    statusChanged: "{name}: {status}",
  },
  en: {
    title: "Chat Cockpit",
    product: "Product",
    channel: "Channel",
    allChannels: "All channels",
    search: "Search name",
    searchHint: "Agent name…",
    myStatus: "My status",
    signOut: "Sign out",
    signIn: "Sign in",
    pasteToken: "Paste your access token",
    signInButton: "Sign in",
    agentOnly: "As an agent you can see and change your own status only.",
    statusSince: "In this status for",
    ONLINE: "Online",
    BREAK: "Break",
    INVISIBLE: "Invisible",
    OFFLINE: "Offline",
    LIVE_CHAT: "Live chat",
    IN_APP: "In-app",
    WHATSAPP: "WhatsApp",
    FACEBOOK: "Facebook Messenger",
    INSTAGRAM: "Instagram DM",
    TWITTER: "Twitter",
    colName: "Name",
    colStatus: "Status",
    colInStatus: "Time in status",
    colFirst: "Avg first response",
    colResolution: "Avg resolution",
    colActive: "Active",
    colResolved: "Resolved",
    colReactivated: "Re-activated",
    colForwarded: "Forwarded",
    colOnlineToday: "Online today",
    colBreakToday: "On break today",
    colUnanswered: "Waiting for a reply (longest)",
    colOverdue: "Overdue first responses",
    colServiceLevel: "Service level (within target)",
    todayTitle: "Today: online {online}, break {onBreak}, invisible {invisible}, offline {offline}",
    serviceLevelTitle: "{within} first responses within the target; {overdue} assignments past it without one",
    queue: "Queue: {n}",
    queueOldest: "Queue: {n} (oldest {wait})",
    target: "First-response target: {target}",
    colChange: "Change status",
    change: "Change…",
    empty: "No agents in this status",
    day: "Day",
    refreshed: "Daily columns: {time} ({ago} ago)",
    connOpen: "Live",
    connConnecting: "Connecting…",
    connDown: "Disconnected",
    warnDown: "The connection to the server is lost; reconnecting. Figures on screen may be out of date.",
    warnStale: "The daily columns were refreshed {ago} ago (expected every {interval}). Figures may be old.",
    noToken: "Paste your access token to continue.",
    expired: "Your session has expired. Sign in with a new access token.",
    malformed: "This does not look like an access token (JWT).",
    noProducts: "This organization has no products yet.",
    UNAUTHENTICATED: "The access token was refused (invalid, expired, or no such user in this organization).",
    FORBIDDEN: "You are not allowed to do this.",
    NOT_FOUND: "Not found.",
    AGENT_OFFLINE: "Only an offline agent can change their own status.",
    BAD_USER_INPUT: "The value entered is not valid.",
    GRAPHQL_VALIDATION_FAILED: "The server did not accept the request.",
    GRAPHQL_PARSE_FAILED: "The server could not read the request.",
    INTERNAL_SERVER_ERROR: "Something went wrong on the server; please try again.",
    NETWORK: "The server cannot be reached; check your connection and try again.",
    statusChanged: "{name}: {status}",
  },
};

const COLUMNS = [
  ["name", "colName", ""],
  ["status", "colStatus", ""],
  ["inStatus", "colInStatus", "num"],
  ["avgFirst", "colFirst", "num"],
  ["avgResolution", "colResolution", "num"],
  ["active", "colActive", "num"],
  ["resolved", "colResolved", "num"],
  ["reactivated", "colReactivated", "num"],
  ["forwarded", "colForwarded", "num"],
  // Supervisor insights (spec 3.5).
  ["onlineToday", "colOnlineToday", "num"],
  ["breakToday", "colBreakToday", "num"],
  ["unanswered", "colUnanswered", "num"],
  ["overdue", "colOverdue", "num"],
  ["serviceLevel", "colServiceLevel", "num"],
  ["change", "colChange", ""],
];

const ROW_FIELDS = `agent { id name role status statusSince } position
  avgFirstResponseSeconds avgResolutionSeconds activeConversations resolvedConversations
  reactivatedConversations forwardedConversations
  secondsInStatusToday { online onBreak invisible offline }
  unansweredConversations oldestUnansweredSince overdueFirstResponses
  firstResponseCount firstResponsesWithinTarget serviceLevel`;
const SUBSCRIPTION = `subscription Cockpit($productId: ID!, $channel: Channel, $search: String) {
  cockpit(productId: $productId, channel: $channel, search: $search) {
    day refreshedAt refreshIntervalSeconds staleAfter serverNow serviceLevelSeconds
    queue { queued oldestQueuedSince } removed rows { ${ROW_FIELDS} }
  }
}`;
const SET_STATUS = `mutation SetStatus($agentId: ID!, $status: AgentStatus!) {
  setAgentStatus(agentId: $agentId, status: $status) { id name role status statusSince }
}`;

const $ = (id) => document.getElementById(id);

const state = {
  lang: localStorage.getItem(LANG_KEY) === "en" ? "en" : "tr",
  token: null,
  me: null,
  products: [],
  productId: null,
  channel: null,
  search: "",
  rows: new Map(), // agent id → row, as the API sent it
  order: [], // agent ids in the API's order
  elements: new Map(), // agent id → <tr>
  day: null,
  refreshedAt: null,
  staleAfter: null, // the server's verdict: past it, the daily columns are stale
  interval: 60,
  queue: null, // { queued, oldestQueuedSince } of the scope
  target: null, // the organization's first-response target, seconds
  skewMs: 0, // server clock − browser clock
  conn: "connecting",
};

// ---------------------------------------------------------------------------- words

function t(key, vars) {
  let text = TEXT[state.lang][key] ?? TEXT.tr[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
  return text;
}

/** Seconds as m:ss, or h:mm:ss from an hour on. */
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A nullable average: "—" when there is no sample, never 0. */
function average(seconds) {
  return seconds === null || seconds === undefined ? "—" : duration(seconds);
}

function serverNow() {
  return Date.now() + state.skewMs;
}

/** The server's now while one paint draws (render, tick), so every clock of that paint
 * reads the same instant; null between paints. */
let paintNow = null;

function painting(draw) {
  paintNow = serverNow();
  try {
    draw();
  } finally {
    paintNow = null;
  }
}

/** Whole seconds of the clock from `ms` (epoch milliseconds) to the server's now: each
 * instant truncated to its second, as the SQL definitions count, so that a running status's
 * time and today's time in that status tick together and agree. */
function secondsSince(ms) {
  const now = paintNow ?? serverNow();
  return Math.max(0, Math.floor(now / 1000) - Math.floor(ms / 1000));
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(state.lang === "tr" ? "tr-TR" : "en-GB");
}

/** An API error in words: by its code, in the screen's language. */
function errorText(error) {
  const code = error && error.extensions && error.extensions.code;
  return TEXT[state.lang][code] ? t(code) : t("INTERNAL_SERVER_ERROR");
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  $("lang").textContent = state.lang === "tr" ? "EN" : "TR";
  fillChannelSelect();
  fillStatusSelect($("my-status"), state.me && state.me.status);
  for (const section of document.querySelectorAll("[data-table]")) buildTable(section);
  state.elements.clear();
  render();
}

// ---------------------------------------------------------------------------- HTTP API

async function graphql(query, variables) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch (_) {
    throw { extensions: { code: "NETWORK" } };
  }
  let body;
  try {
    body = await response.json();
  } catch (_) {
    throw { extensions: { code: response.ok ? "INTERNAL_SERVER_ERROR" : "NETWORK" } };
  }
  if (body.errors && body.errors.length) throw body.errors[0];
  return body.data;
}

// ---------------------------------------------------------------------------- sign-in

function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch (_) {
    return null;
  }
}

function showSignIn(messageKey) {
  live.stop();
  state.token = null;
  state.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ["cockpit", "agent-view", "filters", "status-line", "my-status-box", "signout"]) {
    $(id).hidden = true;
  }
  $("warning").hidden = true;
  $("me").textContent = "";
  $("signin").hidden = false;
  $("signin-message").textContent = messageKey ? t(messageKey) : "";
  $("signin-message").dataset.code = messageKey || "";
  $("token-input").focus();
}

async function signIn(token) {
  token = (token || "").trim().replace(/^Bearer\s+/i, "");
  if (!token) return showSignIn("noToken");
  const claims = tokenClaims(token);
  if (!claims) return showSignIn("malformed");
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) return showSignIn("expired");
  state.token = token;
  state.expiresAt = typeof claims.exp === "number" ? claims.exp * 1000 : null;
  let data;
  try {
    data = await graphql("{ me { id name role status statusSince } }");
  } catch (error) {
    const code = error.extensions && error.extensions.code;
    return showSignIn(TEXT.tr[code] ? code : "INTERNAL_SERVER_ERROR");
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.me = data.me;
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("my-status-box").hidden = false;
  $("me").textContent = state.me.name;
  fillStatusSelect($("my-status"), state.me.status);
  if (state.me.role === "AGENT") {
    $("agent-view").hidden = false;
    return;
  }
  try {
    state.products = (await graphql("{ products { id name } }")).products;
  } catch (error) {
    return showError(error);
  }
  const select = $("product");
  select.replaceChildren(
    ...state.products.map((p) => new Option(p.name, p.id)),
  );
  if (!state.products.length) return showError({ extensions: { code: "noProducts" } }, "noProducts");
  const remembered = localStorage.getItem(PRODUCT_KEY);
  state.productId = state.products.some((p) => p.id === remembered) ? remembered : state.products[0].id;
  select.value = state.productId;
  $("filters").hidden = false;
  $("status-line").hidden = false;
  $("cockpit").hidden = false;
  live.start();
}

// ---------------------------------------------------------------------------- errors

let errorTimer = null;
function showError(error, key) {
  $("error-text").textContent = key ? t(key) : errorText(error);
  $("error").dataset.code = (error && error.extensions && error.extensions.code) || key || "";
  $("error").hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => ($("error").hidden = true), 10000);
}

// ---------------------------------------------------------------------------- live

/** A graphql-transport-ws client that keeps one cockpit subscription alive. */
const live = {
  socket: null,
  subscriptionId: 0,
  backoff: BACKOFF_FIRST_MS,
  retryTimer: null,
  stopped: true,
  fresh: false, // the next message of the subscription is a full snapshot

  start() {
    this.stopped = false;
    this.connect();
  },

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
  },

  connect() {
    clearTimeout(this.retryTimer);
    setConnection(state.conn === "down" ? "down" : "connecting");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({
        type: "connection_init",
        payload: { Authorization: `Bearer ${state.token}` },
      }));
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      switch (message.type) {
        case "connection_ack":
          this.backoff = BACKOFF_FIRST_MS;
          setConnection("open");
          this.subscribe();
          break;
        case "ping":
          socket.send(JSON.stringify({ type: "pong" }));
          break;
        case "next":
          if (message.id !== String(this.subscriptionId)) break;
          if (message.payload.errors && message.payload.errors.length) {
            showError(message.payload.errors[0]);
          } else if (message.payload.data) {
            applyUpdate(message.payload.data.cockpit, this.fresh);
            this.fresh = false;
          }
          break;
        case "error":
          if (message.id === String(this.subscriptionId)) {
            const error = Array.isArray(message.payload) ? message.payload[0] : message.payload;
            if (error && error.extensions && error.extensions.code === "UNAUTHENTICATED") {
              showSignIn(tokenExpired() ? "expired" : "UNAUTHENTICATED");
            } else {
              showError(error);
            }
          }
          break;
        case "complete":
          // The server ended the subscription (e.g. the product is gone): start over.
          if (message.id === String(this.subscriptionId)) this.retry();
          break;
      }
    };
    socket.onclose = (event) => {
      if (socket !== this.socket || this.stopped) return;
      this.socket = null;
      if (event.code === 4401 || event.code === 4403) {
        showSignIn(tokenExpired() ? "expired" : "UNAUTHENTICATED");
        return;
      }
      setConnection("down");
      this.retry();
    };
  },

  retry() {
    if (this.stopped) return;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "retry");
    }
    const wait = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  },

  /** (Re)subscribes with the current filters; the first message replaces everything. */
  subscribe() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || state.conn !== "open") return;
    if (this.subscriptionId) {
      this.socket.send(JSON.stringify({ id: String(this.subscriptionId), type: "complete" }));
    }
    this.subscriptionId += 1;
    this.fresh = true;
    const variables = { productId: state.productId, channel: state.channel, search: state.search || null };
    this.socket.send(JSON.stringify({
      id: String(this.subscriptionId),
      type: "subscribe",
      payload: { query: SUBSCRIPTION, variables },
    }));
  },
};

function tokenExpired() {
  return state.expiresAt !== null && state.expiresAt !== undefined && state.expiresAt <= Date.now();
}

function setConnection(conn) {
  state.conn = conn;
  const el = $("conn");
  el.dataset.state = conn;
  el.textContent = t(conn === "open" ? "connOpen" : conn === "down" ? "connDown" : "connConnecting");
  updateWarning();
}

// ---------------------------------------------------------------------------- model

/** Applies a `CockpitUpdate`: a full snapshot replaces, an update changes rows in place. */
function applyUpdate(update, full) {
  if (!update) return;
  if (update.serverNow) state.skewMs = Date.parse(update.serverNow) - Date.now();
  state.day = update.day;
  state.refreshedAt = update.refreshedAt;
  state.staleAfter = update.staleAfter;
  if (update.refreshIntervalSeconds > 0) state.interval = update.refreshIntervalSeconds;
  if (update.queue) state.queue = update.queue;
  if (update.serviceLevelSeconds) state.target = update.serviceLevelSeconds;
  if (full) {
    state.rows.clear();
    state.order = update.rows.map((row) => row.agent.id);
  }
  for (const id of update.removed || []) {
    state.rows.delete(id);
    state.order = state.order.filter((other) => other !== id);
  }
  for (const row of update.rows) {
    if (!state.rows.has(row.agent.id) && !state.order.includes(row.agent.id)) state.order.push(row.agent.id);
    // Its time in status today is as of this message's server clock.
    state.rows.set(row.agent.id, { ...row, asOf: update.serverNow ? Date.parse(update.serverNow) : serverNow() });
  }
  // The API's order, as it states it: every row carries its position (the server sorts).
  state.order.sort((a, b) => (state.rows.get(a)?.position ?? 0) - (state.rows.get(b)?.position ?? 0));
  if (state.me) {
    const mine = state.rows.get(state.me.id);
    if (mine) setMe(mine.agent);
  }
  render();
}

function setMe(agent) {
  state.me = { ...state.me, ...agent };
  fillStatusSelect($("my-status"), state.me.status);
}

// ---------------------------------------------------------------------------- view

function buildTable(section) {
  section.querySelector("table")?.remove();
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const [col, key, cls] of COLUMNS) {
    const th = document.createElement("th");
    th.textContent = t(key);
    th.dataset.col = col;
    if (cls) th.className = cls;
    head.appendChild(th);
  }
  table.appendChild(document.createElement("tbody"));
  section.appendChild(table);
}

function fillChannelSelect() {
  const select = $("channel");
  select.replaceChildren(
    new Option(t("allChannels"), ""),
    ...CHANNELS.map((c) => new Option(t(c), c)),
  );
  select.value = state.channel || "";
}

/** A status picker: a prompt, then the four statuses (the current one disabled). */
function fillStatusSelect(select, current) {
  const prompt = new Option(current ? t(current) : t("change"), "");
  prompt.disabled = true;
  select.replaceChildren(prompt, ...STATUSES.map((s) => {
    const option = new Option(t(s), s);
    option.disabled = s === current;
    return option;
  }));
  select.value = "";
}

function mayChange(row) {
  if (!state.me) return false;
  if (row.agent.id === state.me.id) return true;
  return (state.me.role === "ADMIN" || state.me.role === "SUPERVISOR") && row.agent.status !== "OFFLINE";
}

function rowElement(id) {
  let tr = state.elements.get(id);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.agent = id;
    for (const [col, , cls] of COLUMNS) {
      const td = tr.insertCell();
      td.dataset.col = col;
      if (cls) td.className = cls;
    }
    state.elements.set(id, tr);
  }
  return tr;
}

function setCell(tr, col, text) {
  const td = tr.querySelector(`td[data-col="${col}"]`);
  if (td.textContent !== text) td.textContent = text;
  return td;
}

function fillRow(tr, row) {
  const a = row.agent;
  setCell(tr, "name", a.name);
  const statusCell = tr.querySelector('td[data-col="status"]');
  if (statusCell.dataset.status !== a.status || !statusCell.firstChild || statusCell.textContent !== t(a.status)) {
    const badge = document.createElement("span");
    badge.className = `badge ${a.status}`;
    badge.textContent = t(a.status);
    statusCell.replaceChildren(badge);
    statusCell.dataset.status = a.status;
  }
  tr.dataset.status = a.status;
  tr.dataset.since = a.statusSince;
  fillClocks(tr, row);
  setCell(tr, "avgFirst", average(row.avgFirstResponseSeconds));
  setCell(tr, "avgResolution", average(row.avgResolutionSeconds));
  setCell(tr, "active", String(row.activeConversations));
  setCell(tr, "resolved", String(row.resolvedConversations));
  setCell(tr, "reactivated", String(row.reactivatedConversations));
  setCell(tr, "forwarded", String(row.forwardedConversations));
  const change = tr.querySelector('td[data-col="change"]');
  const allowed = mayChange(row);
  const current = change.querySelector("select");
  if (!allowed) {
    if (current) change.replaceChildren();
  } else if (!current || current.dataset.current !== a.status || current.dataset.lang !== state.lang) {
    if (current && document.activeElement === current) return;
    const select = document.createElement("select");
    select.dataset.statusControl = a.id;
    select.dataset.current = a.status;
    select.dataset.lang = state.lang;
    select.setAttribute("aria-label", `${t("colChange")}: ${a.name}`);
    fillStatusSelect(select, null);
    for (const option of select.options) option.disabled = option.value === "" || option.value === a.status;
    select.addEventListener("change", () => changeStatus(a.id, select.value, select));
    change.replaceChildren(select);
  }
}

/** The cells that move with the clock alone: time in status and the insights (tick()). */
function fillClocks(tr, row) {
  setCell(tr, "inStatus", duration(secondsSince(Date.parse(row.agent.statusSince))));
  fillInsights(tr, row);
}

/** Seconds in `status` today: as sent, plus the time since for the current status. */
function todaySeconds(row, status, field) {
  const base = (row.secondsInStatusToday && row.secondsInStatusToday[field]) || 0;
  if (row.agent.status !== status || !row.asOf) return base;
  return base + secondsSince(row.asOf);
}

function percent(value) {
  return new Intl.NumberFormat(state.lang === "tr" ? "tr-TR" : "en-GB", { style: "percent" }).format(value);
}

/** The columns of spec 3.5. */
function fillInsights(tr, row) {
  const today = {
    online: duration(todaySeconds(row, "ONLINE", "online")),
    onBreak: duration(todaySeconds(row, "BREAK", "onBreak")),
    invisible: duration(todaySeconds(row, "INVISIBLE", "invisible")),
    offline: duration(todaySeconds(row, "OFFLINE", "offline")),
  };
  setCell(tr, "onlineToday", today.online).title = t("todayTitle", today);
  setCell(tr, "breakToday", today.onBreak).title = t("todayTitle", today);
  const waiting = row.unansweredConversations || 0;
  const unanswered = waiting && row.oldestUnansweredSince
    ? `${waiting} (${duration(secondsSince(Date.parse(row.oldestUnansweredSince)))})`
    : String(waiting);
  setCell(tr, "unanswered", unanswered).classList.toggle("alert", waiting > 0);
  const overdue = row.overdueFirstResponses || 0;
  setCell(tr, "overdue", String(overdue)).classList.toggle("alert", overdue > 0);
  const level = row.serviceLevel === null || row.serviceLevel === undefined
    ? "—"
    : `${percent(row.serviceLevel)} (${row.firstResponsesWithinTarget}/${(row.firstResponseCount || 0) + overdue})`;
  setCell(tr, "serviceLevel", level).title = t("serviceLevelTitle", {
    within: row.firstResponsesWithinTarget || 0,
    overdue,
  });
}

function render() {
  painting(draw);
}

function draw() {
  const tables = {};
  for (const section of document.querySelectorAll("[data-table]")) {
    if (!section.querySelector("table")) buildTable(section);
    tables[section.dataset.table] = { section, body: section.querySelector("tbody"), rows: [] };
  }
  for (const id of state.order) {
    const row = state.rows.get(id);
    if (!row) continue;
    const tr = rowElement(id);
    fillRow(tr, row);
    tables[row.agent.status].rows.push(tr);
  }
  for (const [id, tr] of state.elements) {
    if (!state.rows.has(id)) {
      tr.remove();
      state.elements.delete(id);
    }
  }
  for (const { section, body, rows } of Object.values(tables)) {
    section.querySelector(".count").textContent = `(${rows.length})`;
    if (!rows.length) {
      const td = document.createElement("td");
      td.colSpan = COLUMNS.length;
      td.className = "empty";
      td.textContent = t("empty");
      const tr = document.createElement("tr");
      tr.className = "empty-row";
      tr.appendChild(td);
      body.replaceChildren(tr);
      continue;
    }
    body.querySelector("tr.empty-row")?.remove();
    // Put the rows in order, moving only those out of place (keeps focus where it is).
    rows.forEach((tr, i) => {
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    while (body.children.length > rows.length) body.lastElementChild.remove();
  }
  tickHeader();
}

/** Once a second: time in status, the refresh age, the warnings. */
function tick() {
  painting(drawClocks);
}

function drawClocks() {
  for (const [id, tr] of state.elements) {
    const row = state.rows.get(id);
    if (row) fillClocks(tr, row);
  }
  if (state.me && !$("agent-view").hidden) {
    $("my-status-time").textContent = duration(secondsSince(Date.parse(state.me.statusSince)));
  }
  if (state.token && tokenExpired()) showSignIn("expired");
  tickHeader();
}

function refreshAge() {
  return state.refreshedAt ? (serverNow() - Date.parse(state.refreshedAt)) / 1000 : null;
}

function tickHeader() {
  $("day").textContent = state.day ? `${t("day")}: ${state.day}` : "";
  const queue = state.queue;
  const queueEl = $("queue");
  queueEl.textContent = !queue
    ? ""
    : queue.oldestQueuedSince
      ? t("queueOldest", { n: queue.queued, wait: duration(secondsSince(Date.parse(queue.oldestQueuedSince))) })
      : t("queue", { n: queue.queued });
  queueEl.dataset.queued = queue ? String(queue.queued) : "";
  queueEl.classList.toggle("alert", !!queue && queue.queued > 0);
  $("target").textContent = state.target ? t("target", { target: duration(state.target) }) : "";
  const age = refreshAge();
  $("refreshed").textContent = age === null ? "" : t("refreshed", { time: clock(state.refreshedAt), ago: duration(age) });
  updateWarning();
}

function updateWarning() {
  const warning = $("warning");
  let kind = "";
  let text = "";
  const age = refreshAge();
  if (!state.token || $("cockpit").hidden) {
    kind = "";
  } else if (state.conn === "down") {
    kind = "connection";
    text = t("warnDown");
  } else if (age !== null && state.staleAfter && serverNow() > Date.parse(state.staleAfter)) {
    kind = "stale";
    text = t("warnStale", { ago: duration(age), interval: duration(state.interval) });
  }
  warning.dataset.kind = kind;
  if (warning.textContent !== text) warning.textContent = text;
  warning.hidden = !kind;
}

async function changeStatus(agentId, status, select) {
  if (!status) return;
  select.disabled = true;
  try {
    const data = await graphql(SET_STATUS, { agentId, status });
    const agent = data.setAgentStatus;
    const row = state.rows.get(agent.id);
    // Applied at once; the subscription confirms it.
    if (row) state.rows.set(agent.id, { ...row, agent: { ...row.agent, ...agent } });
    if (state.me && agent.id === state.me.id) setMe(agent);
    render();
  } catch (error) {
    showError(error);
    if (select.isConnected) select.value = "";
  } finally {
    select.disabled = false;
  }
}

// ---------------------------------------------------------------------------- wiring

function wire() {
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "tr" ? "en" : "tr";
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
    setConnection(state.conn);
    const code = $("signin-message").dataset.code;
    if (code) $("signin-message").textContent = t(code);
  });
  $("signin-button").addEventListener("click", () => signIn($("token-input").value));
  $("token-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      signIn($("token-input").value);
    }
  });
  $("signout").addEventListener("click", () => {
    $("token-input").value = "";
    showSignIn(null);
  });
  $("error-close").addEventListener("click", () => ($("error").hidden = true));
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("product").addEventListener("change", (e) => {
    state.productId = e.target.value;
    localStorage.setItem(PRODUCT_KEY, state.productId);
    live.subscribe();
  });
  $("channel").addEventListener("change", (e) => {
    state.channel = e.target.value || null;
    live.subscribe();
  });
  let searchTimer = null;
  $("search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.search = e.target.value;
      live.subscribe();
    }, SEARCH_DEBOUNCE_MS);
  });
  $("my-status").addEventListener("change", (e) => {
    if (state.me) changeStatus(state.me.id, e.target.value, e.target);
  });
  // The GraphiQL page reads the token from this tab's session (opened from here).
  $("graphiql-link").addEventListener("click", () => sessionStorage.setItem(TOKEN_KEY, state.token || ""));
  setInterval(tick, 1000);
}

function start() {
  wire();
  applyLanguage();
  // A link from `cockpit demo` carries the token in the fragment, which never reaches a
  // server: take it, then clear it from the address bar and the history.
  const fragment = new URLSearchParams(location.hash.slice(1));
  let token = fragment.get("token");
  if (token) history.replaceState(null, "", location.pathname + location.search);
  token = token || sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else showSignIn(null);
}

start();
