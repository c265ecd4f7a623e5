// The bedside app: pairing, the ward board, a check at the bed, and the outbox. Hash routes keep it one page
// that the service worker can serve offline.
import "./style.css";
import { api, ApiError } from "./api.js";
import { openCamera, runChallenge } from "./capture.js";
import { loadDetector, stats } from "./detector.js";
import { BED_STATE, CANNOT_TAKE_PART, VERDICT, errorText, localTime, timeLeft } from "./i18n.js";
import { onChange, recent, startSyncLoop, submit, sync } from "./outbox.js";
import { credential, forgetCredential, lastBoard, pending, saveBoard, saveCredential } from "./store.js";
import { bedEmptyResult, faceResult, noFaceResult } from "./upload.js";

const app = document.getElementById("app");
const state = { board: null, tasks: new Map(), waiting: [], stopCamera: null, timer: null };

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child != null) node.append(child);
  return node;
}

function show(...nodes) {
  app.replaceChildren(...nodes.filter((node) => node != null));
}

function message(text, kind = "info") {
  return h("p", { class: `msg msg-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function describe(err) {
  return err instanceof ApiError ? errorText(err.code, err.message) : errorText(err?.code, String(err?.message || err));
}

function setNet() {
  const net = document.getElementById("net");
  net.dataset.online = String(navigator.onLine);
  net.textContent = navigator.onLine ? "在线" : "离线";
}

function setOutbox(waiting) {
  state.waiting = waiting;
  const badge = document.getElementById("outbox");
  badge.hidden = waiting.length === 0;
  badge.textContent = `待上传 ${waiting.length}`;
  if (location.hash.startsWith("#/board") || location.hash === "") renderBoard();
}

// ---- pairing ----------------------------------------------------------------------------------------------
function pairView(prefill = "") {
  const code = h("input", { id: "pair-code", name: "code", inputmode: "text", autocomplete: "one-time-code",
                             value: prefill, maxlength: "64", required: true, "aria-describedby": "pair-error" });
  const name = h("input", { id: "pair-name", name: "name", maxlength: "120", placeholder: "如：心内科一病区 平板A" });
  const error = h("p", { id: "pair-error", class: "field-error", role: "alert" });
  const form = h("form", { class: "card", id: "pair-form", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    form.querySelector("button").disabled = true;
    try {
      const answer = await api("/api/v1/device/pair", { method: "POST", token: "",
        body: { code: code.value.trim(), name: name.value.trim() || "床旁核查网页" } });
      await saveCredential({ token: answer.token, device_id: answer.device_id, ward_id: answer.ward_id,
                             hospital_id: answer.hospital_id, paired_at: new Date().toISOString() });
      history.replaceState(null, "", "/bedside/#/board");
      route();
    } catch (err) {
      error.textContent = err.code === "network" ? errorText("network").replace("已存入待上传，联网后自动上传", "请联网后配对")
        : err.status === 404 || err.status === 401 || err.status === 403 || err.status === 410 ? errorText("pairing_code_invalid")
          : describe(err);
    } finally {
      form.querySelector("button").disabled = false;
    }
  } },
  h("h1", {}, "配对本设备"),
  h("p", { class: "muted" }, "请输入管理员在控制台生成的配对码，或扫描配对二维码。配对后本浏览器即为该病区的核查设备，可在控制台随时撤销。"),
  h("label", { for: "pair-code" }, "配对码"), code, error,
  h("label", { for: "pair-name" }, "设备名称（可选）"), name,
  h("button", { type: "submit", class: "primary", id: "pair-submit" }, "配对"),
  h("p", {}, h("a", { href: "#/inspect", id: "to-inspect" }, "医保稽查人员：移动稽查登录")));
  show(form);
}

// ---- inspector mode (移动稽查) ---------------------------------------------------------------------------------
function inspectView() {
  const username = h("input", { id: "insp-user", autocomplete: "username", required: true, maxlength: "80" });
  const password = h("input", { id: "insp-pass", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { id: "insp-error", class: "field-error", role: "alert" });
  const form = h("form", { class: "card", id: "insp-form", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const signed = await api("/api/v1/auth/token", { method: "POST", token: "",
        body: { username: username.value.trim(), password: password.value } });
      if (signed.role !== "supervisor" && signed.role !== "admin") {
        error.textContent = "移动稽查仅限医保局稽查人员（监督员）使用";
        return;
      }
      await chooseTarget(signed.access_token);
    } catch (err) {
      error.textContent = err.status === 401 ? "用户名或密码不正确" : err.status === 429
        ? "登录失败次数过多，请稍后再试" : describe(err);
    }
  } },
  h("h1", {}, "移动稽查"),
  h("p", { class: "muted" }, "医保局稽查人员用本人账号登录，在手机上发起不预先通知的现场核查。核查结果记在本手机名下，不经医院设备。"),
  h("label", { for: "insp-user" }, "用户名"), username,
  h("label", { for: "insp-pass" }, "密码"), password, error,
  h("button", { type: "submit", class: "primary", id: "insp-sign-in" }, "登录"),
  h("p", {}, h("a", { href: "#/pair" }, "病区设备配对")));
  show(form);
}

async function chooseTarget(userToken) {
  const targets = await api("/api/v1/inspections/targets", { token: userToken });
  const hospital = h("select", { id: "insp-hospital" },
    targets.map((t) => h("option", { value: String(t.hospital_id) }, t.hospital_name)));
  const ward = h("select", { id: "insp-ward" });
  const fillWards = () => {
    const chosen = targets.find((t) => String(t.hospital_id) === hospital.value);
    ward.replaceChildren(h("option", { value: "" }, "全院"),
      ...(chosen?.wards || []).map((w) => h("option", { value: String(w.ward_id) }, `${w.ward_name}（在院 ${w.inpatients} 人）`)));
  };
  hospital.addEventListener("change", fillWards);
  fillWards();
  const error = h("p", { id: "insp-start-error", class: "field-error", role: "alert" });
  const form = h("form", { class: "card", id: "insp-target", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const existing = await credential();
      const started = await api("/api/v1/inspections", { method: "POST", token: userToken, body: {
        hospital_id: Number(hospital.value), ward_id: ward.value ? Number(ward.value) : null,
        device_token: existing?.kind === "inspector" ? existing.token : null } });
      await saveCredential({ token: started.token || existing.token, device_id: started.device_id,
                             ward_id: started.ward_id, kind: "inspector", campaign_id: started.campaign_id,
                             paired_at: new Date().toISOString() });
      state.board = null;
      state.tasks.clear();
      location.hash = "#/board";
    } catch (err) {
      error.textContent = describe(err);
    }
  } },
  h("h1", {}, "选择核查地点"),
  h("label", { for: "insp-hospital" }, "医院"), hospital,
  h("label", { for: "insp-ward" }, "病区"), ward, error,
  h("button", { type: "submit", class: "primary", id: "insp-start" }, "开始现场核查"));
  show(form);
}

// ---- the ward board ---------------------------------------------------------------------------------------
async function loadBoard() {
  state.inspector = (await credential())?.kind === "inspector";
  const [board, batch] = await Promise.all([api("/api/v1/device/board"), api("/api/v1/device/tasks")]);
  state.board = board;
  for (const task of batch.tasks) state.tasks.set(task.bed_id, task);
  const open = new Set(batch.tasks.map((t) => t.task_id));
  for (const [bed, task] of state.tasks) if (!open.has(task.task_id)) state.tasks.delete(bed);
  document.getElementById("ward-name").textContent = board.ward_name || "";
  await saveBoard({ board, tasks: [...state.tasks.values()] });
}

async function restoreBoard() {
  const saved = await lastBoard();
  if (!saved) return false;
  state.board = saved.board;
  state.tasks = new Map(saved.tasks.map((task) => [task.bed_id, task]));
  state.inspector = (await credential())?.kind === "inspector";
  document.getElementById("ward-name").textContent = saved.board.ward_name || "";
  return true;
}

function bedState(bed) {
  const waiting = state.waiting.some((entry) => entry.meta?.bed_id === bed.bed_id);
  return waiting ? "waiting" : bed.state;
}

function renderBoard() {
  if (!state.board) return;
  const cards = state.board.beds.map((bed) => {
    const task = state.tasks.get(bed.bed_id);
    const status = bedState(bed);
    const canCheck = Boolean(task) && status !== "waiting";
    return h("li", { class: `bed bed-${status}`, "data-bed": bed.bed_label, "data-state": status },
      h("button", { class: "bed-open", disabled: !canCheck, onclick: () => { location.hash = `#/check/${bed.bed_id}`; } },
        h("span", { class: "bed-label" }, `${bed.bed_label} 床`),
        h("span", { class: "bed-state" }, BED_STATE[status] || "—"),
        task ? h("span", { class: "bed-time" }, timeLeft(task.deadline_at)) : null));
  });
  const last = recent.slice(0, 5).map((r) => h("li", {},
    `${r.meta?.bed_label ?? ""} 床：`, r.error ? errorText(r.error, r.message) : VERDICT[r.verdict] || "已上传"));
  show(
    h("section", { class: "board-head" },
      h("h1", {}, state.inspector ? "移动稽查 · 床位" : "病区床位"),
      h("p", { class: "muted" }, `更新于 ${localTime(state.board.server_time)}（北京时间）`,
        state.waiting.length ? `，${state.waiting.length} 条结果待上传` : "")),
    h("ul", { class: "beds", id: "beds" }, cards),
    last.length ? h("section", { class: "card" }, h("h2", {}, "最近上传"), h("ul", { class: "recent" }, last)) : null,
    h("p", { class: "muted small" }, "点按有任务的床位开始核查。"),
  );
}

async function boardView() {
  try {
    await loadBoard();
    renderBoard();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      await forgetCredential();
      pairView();
      app.prepend(message(errorText("not_authenticated"), "error"));
      return;
    }
    if (state.board || (err.code === "network" && await restoreBoard())) {
      renderBoard();  // offline: the last board known, with what waits in the outbox
      if (err.code === "network") app.prepend(message("离线：显示的是最后一次联网时的床位，结果会在联网后自动上传。", "warn"));
    } else {
      show(message(err.code === "network" ? "离线：联网后显示床位。已保存的结果会在联网后自动上传。" : describe(err), "error"));
    }
  }
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (location.hash.startsWith("#/board")) boardView(); }, 10000);
}

// ---- a check ----------------------------------------------------------------------------------------------
async function checkView(bedId) {
  const task = state.tasks.get(bedId);
  if (!task) {
    location.hash = "#/board";
    return;
  }
  const bed = state.board?.beds.find((b) => b.bed_id === bedId);
  const meta = { bed_id: bedId, bed_label: bed?.bed_label ?? task.bed_label, task_id: task.task_id };
  const video = h("video", { id: "preview", playsinline: true, muted: true, autoplay: true });
  const prompt = h("p", { class: "prompt", id: "prompt" }, "正在准备…");
  const feedback = h("p", { class: "feedback", id: "feedback" });
  const note = h("input", { id: "note", maxlength: "500", placeholder: "护士备注（可选）" });
  const unable = h("select", { id: "unable-reason" }, h("option", { value: "" }, "无法配合的原因…"),
    Object.entries(CANNOT_TAKE_PART).map(([value, words]) => h("option", { value }, words)));
  const controller = new AbortController();
  let unableChosen = false;
  const finish = async (result, text) => {
    controller.abort();
    state.stopCamera?.();
    stats.lastUploadBytes = JSON.stringify(result).length;
    show(message(text), h("p", { class: "muted" }, "正在上传…"));
    const answer = await submit(result, meta);
    const waiting = (await pending()).some((e) => e.idempotency_key === result.idempotency_key);
    show(
      waiting ? message("网络不可用，结果已保存在本设备，联网后自动上传。", "warn")
        : answer?.error ? message(errorText(answer.error, answer.message), "error")
          // The answer at upload is a first judgement: the server's evidence check (the session re-judged, the
          // faces compared, the place) may still overrule it, and the board shows the final state.
          : message(`${meta.bed_label} 床：已上传。初判${VERDICT[answer?.verdict] || "待定"}，以服务器证据复核为准`, "ok"),
      h("button", { class: "primary", id: "back", onclick: () => { location.hash = "#/board"; } }, "返回床位"));
  };
  const emptyButton = h("button", { id: "bed-empty", onclick: () => finish(bedEmptyResult(task, note.value), "已记录：空床") }, "床上无人");
  const unableButton = h("button", { id: "cannot-take-part", onclick: async () => {
    if (!unable.value) { unable.focus(); feedback.textContent = "请先选择无法配合的原因"; return; }
    unableChosen = true;
    feedback.textContent = "已记录无法配合，请将摄像头对准患者面部…";
  } }, "无法配合");
  show(
    h("section", { class: "check" },
      h("h1", {}, `${meta.bed_label} 床核查`),
      h("div", { class: "stage" }, video, h("div", { class: "guide", "aria-hidden": "true" })),
      prompt, feedback,
      h("div", { class: "actions" }, emptyButton, h("span", { class: "unable" }, unable, unableButton)),
      note,
      h("button", { class: "link", onclick: () => { controller.abort(); state.stopCamera?.(); location.hash = "#/board"; } }, "取消")));
  stats.tappedAt = performance.now();
  stats.firstPromptAt = null;
  try {
    prompt.textContent = "正在准备人脸检测…";
    await loadDetector();  // before the camera opens: the patient is filmed only once the check can run
    prompt.textContent = "正在打开摄像头…";
    state.stopCamera = await openCamera(video);
    const session = await runChallenge(video, task, (ui) => {
      if (ui.phase === "action" && stats.firstPromptAt === null) stats.firstPromptAt = performance.now();
      prompt.textContent = ui.prompt;
      feedback.textContent = ui.feedback || "";
    }, { signal: controller.signal, stopEarly: () => unableChosen });
    if (session.noFace) {
      await finish(noFaceResult(task, note.value), "未能拍到人脸");
      return;
    }
    const cannot = unableChosen ? unable.value : null;
    await finish(faceResult(task, session, { note: note.value, cannotTakePart: cannot }), "已完成拍摄");
  } catch (err) {
    if (err?.code === "cancelled") return;
    state.stopCamera?.();
    // The bed can still be marked empty without a camera: the buttons stay, the error is said in words.
    prompt.textContent = describe(err);
    prompt.classList.add("prompt-error");
    feedback.textContent = "";
  }
}

// ---- routing ----------------------------------------------------------------------------------------------
async function route() {
  clearInterval(state.timer);
  state.stopCamera?.();
  const params = new URLSearchParams(location.search);
  const paired = await credential();
  if (location.hash.startsWith("#/inspect")) {
    inspectView();
    return;
  }
  if (!paired || location.hash.startsWith("#/pair")) {
    const code = params.get("code") || new URLSearchParams(location.hash.split("?")[1] || "").get("code") || "";
    pairView(code);
    return;
  }
  const check = location.hash.match(/^#\/check\/(\d+)/);
  if (check) {
    if (!state.board) await loadBoard().catch(() => restoreBoard());
    await checkView(Number(check[1]));
    return;
  }
  await boardView();
}

window.addEventListener("hashchange", route);
window.addEventListener("online", () => { setNet(); if (location.hash.startsWith("#/board")) boardView(); });
window.addEventListener("offline", setNet);
onChange(setOutbox);
setNet();
startSyncLoop();
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/bedside/sw.js", { scope: "/bedside/" }).catch(() => {});
}
route();
window.bedside = { sync, pending, stats };  // for the nurse's support staff and the tests: the outbox at a glance
