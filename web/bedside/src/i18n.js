// Every word the app shows, Chinese first. Reason codes from the server are stable; their words live here.
export const TIME_ZONE = "Asia/Shanghai";

const clock = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", hour12: false,
});
const dateClock = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TIME_ZONE, month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
});

export function localTime(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  const today = new Date();
  const sameDay = clock.formatToParts ? when.toDateString() === today.toDateString() : false;
  return sameDay ? clock.format(when) : dateClock.format(when);
}

export function timeLeft(deadlineIso, nowMs = Date.now()) {
  const seconds = Math.round((new Date(deadlineIso).getTime() - nowMs) / 1000);
  if (seconds <= 0) return "已到截止时间";
  const minutes = Math.floor(seconds / 60);
  if (minutes >= 60) return `剩余 ${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分`;
  if (minutes >= 1) return `剩余 ${minutes} 分 ${seconds % 60} 秒`;
  return `剩余 ${seconds} 秒`;
}

export const BED_STATE = {
  pending: "待核查",
  verified: "已通过",
  flagged: "疑点",
  empty: "空床",
  on_leave: "请假",
  exempt: "豁免",
  overdue: "超时",
  idle: "无任务",
  waiting: "待上传",
};

export const VERDICT = {
  pending: "待核查",
  verified: "已通过",
  absent: "人不在床（疑似挂床）",
  impersonated: "非本人（疑似冒名）",
  spoof: "活体未通过",
  unrecognised: "无法识别，待人工复核",
  exempt: "豁免",
  overdue: "超时",
  on_leave: "请假",
};

export const CANNOT_TAKE_PART = {
  unconscious: "昏迷",
  sedated: "镇静中",
  infant: "婴幼儿",
  face_covered: "面部遮挡（敷料、面罩）",
  cannot_move: "无法活动",
  other: "其他",
};

// Prompts in the patient's own left and right: the front camera's preview is mirrored, like a mirror.
export function promptFor(action, mirrored = true) {
  if (action === "turn_left" || action === "turn_right") {
    const imageLeft = action === "turn_left";
    return imageLeft === mirrored ? "请向左转头" : "请向右转头";
  }
  return { blink: "请眨眼", open_mouth: "请张嘴", look_up: "请抬头", look_down: "请低头" }[action] || "请按提示动作";
}

const ERRORS = {
  network: "网络不可用，已存入待上传，联网后自动上传",
  pairing_code_invalid: "配对码无效或已过期，请向管理员索取新的配对码",
  not_authenticated: "本设备未配对或已被撤销，请重新配对",
  device_revoked: "本设备已被撤销，请重新配对",
  nonce_replayed: "该核查结果已上传过，无需重复上传",
  task_closed: "该核查任务已结束",
  wrong_ward: "该任务不属于本病区",
  clock_implausible: "设备时间不正确，请校准时间后重试",
  image_too_large: "图像过大，请重试",
  evidence_missing: "缺少人脸证据，请重新核查",
  scene_frame_missing: "缺少床位场景画面，请重新核查",
  camera_denied: "无法打开摄像头：请在浏览器设置中允许使用摄像头",
  camera_missing: "未找到摄像头",
  rate_limited: "请求过于频繁，请稍后再试",
  invalid_input: "上传内容有误，请重新核查",
};

export function errorText(code, fallback) {
  return ERRORS[code] || fallback || "操作未成功，请稍后重试";
}
