// One check at the bed: the camera, the server's challenge as prompts (shown and spoken), live feedback from
// the on-device detector, and the session the server re-judges (face-region frames with their times and boxes,
// the prompt times, the crop among the frames, a scene frame with the face blurred).
import { detectFaces, loadDetector, noseDrop, noseOffset, stats } from "./detector.js";
import { promptFor } from "./i18n.js";

export const FRAME_INTERVAL_MS = 200;     // 5 frames a second, each with a detection: a turn takes about a second
const DENSE_INTERVAL_MS = 66;             // 15 a second while a blink or an open mouth is asked for
const FACE_ACTIONS = new Set(["blink", "open_mouth"]);
const MAX_FRAMES = 90;
export const FACE_REGION_PX = 160;        // the face region's side in the uploaded JPEG (as the edge device's)
const REGION_MARGIN = 0.35;                // around the detector's box, so the whole head stays in view
const JPEG_QUALITY = 0.75;
const SCENE_SIDE_PX = 640;
const NEUTRAL_MS = 1200;
const SETTLE_MS = 700;                     // after an action is seen, before the next prompt

export async function openCamera(video) {
  if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error("no camera"), { code: "camera_missing" });
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (err) {
    const code = err?.name === "NotAllowedError" ? "camera_denied" : "camera_missing";
    throw Object.assign(new Error(String(err)), { code });
  }
  video.srcObject = stream;
  await video.play();
  return () => stream.getTracks().forEach((track) => track.stop());
}

function speak(text) {
  try {
    if (!window.speechSynthesis) return;
    window.speechSynthesis.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "zh-CN";
    window.speechSynthesis.speak(utterance);
  } catch { /* speech is a help, never a requirement */ }
}

function grab(video, canvas) {
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas;
}

function regionOf(face, width, height) {
  const side = Math.max(face.w, face.h) * (1 + 2 * REGION_MARGIN);
  const x = Math.max(0, Math.round(face.x + face.w / 2 - side / 2));
  const y = Math.max(0, Math.round(face.y + face.h / 2 - side / 2));
  return { x, y, w: Math.min(width - x, Math.round(side)), h: Math.min(height - y, Math.round(side)) };
}

function jpegOf(source, region, side) {
  const canvas = document.createElement("canvas");
  const scale = side / Math.max(region.w, region.h);
  canvas.width = Math.max(1, Math.round(region.w * scale));
  canvas.height = Math.max(1, Math.round(region.h * scale));
  canvas.getContext("2d").drawImage(source, region.x, region.y, region.w, region.h, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", JPEG_QUALITY).split(",")[1];
}

// The whole frame, reduced, with the face blurred where the detector put it (the scene is about the bed).
function sceneOf(source, face) {
  const scale = Math.min(1, SCENE_SIDE_PX / Math.max(source.width, source.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(source.width * scale);
  canvas.height = Math.round(source.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  if (face) {
    const r = regionOf(face, source.width, source.height);
    const small = document.createElement("canvas");
    small.width = 8;
    small.height = 8;
    small.getContext("2d").drawImage(source, r.x, r.y, r.w, r.h, 0, 0, 8, 8);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, 8, 8, r.x * scale, r.y * scale, r.w * scale, r.h * scale);
  }
  return canvas.toDataURL("image/jpeg", 0.75).split(",")[1];
}

function actionSeen(action, face, neutral) {
  if (!face || !neutral) return false;
  const across = noseOffset(face) - noseOffset(neutral);
  const down = noseDrop(face) - noseDrop(neutral);
  // The preview is the camera's own (unmirrored) image coordinates, as the server's actions are.
  switch (action) {
    case "turn_left": return across < -0.12;
    case "turn_right": return across > 0.12;
    case "look_up": return down < -0.1;
    case "look_down": return down > 0.1;
    default: return null;  // blinks and mouths: not visible to a 5-point detector; the server judges them
  }
}

async function sha256Hex(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs the challenge; `ui` receives {phase, prompt, feedback, progress}. Prompts are shown when the server's
// schedule says (task.challenge_prompts_s, seconds into the session), so a recording cannot know them in advance.
export async function runChallenge(video, task, ui, { signal, stopEarly } = {}) {
  await loadDetector();
  const canvas = document.createElement("canvas");
  const frames = [];
  const promptsS = [];
  let origin = null;       // performance.now() of the session's first frame
  let lastFace = null;
  let scene = null;
  let frameSize = [0, 0];

  async function sample(recording, dense = false) {
    if (signal?.aborted) throw Object.assign(new Error("cancelled"), { code: "cancelled" });
    const frame = grab(video, canvas);
    const now = performance.now();
    // While a blink or an open mouth is asked for, frames come faster than the detector runs: the head stays
    // where it was, so the last box cuts the region, and the server sees the eyes close (a blink is 100-400 ms).
    const faces = dense && lastFace ? [lastFace] : await detectFaces(frame, frame.width, frame.height);
    const face = faces[0] || null;
    if (face && recording) {
      if (origin === null) origin = now;
      frameSize = [frame.width, frame.height];
      const region = regionOf(face, frame.width, frame.height);
      const jpeg = jpegOf(frame, region, FACE_REGION_PX);
      frames.push({ time_s: (now - origin) / 1000, region, face, jpeg_b64: jpeg, sha256: await sha256Hex(jpeg) });
      lastFace = face;
      if (!scene && frames.length >= 3) scene = { time_s: (now - origin) / 1000, jpeg_b64: sceneOf(frame, face) };
    }
    return { face, frame };
  }

  async function loop(recording, step, maxMs, denseNow = () => false) {
    const end = performance.now() + maxMs;
    while (performance.now() < end) {
      const tick = performance.now();
      const dense = denseNow();
      const state = await sample(recording, dense);
      if (step(state)) return state;
      const wait = (dense ? DENSE_INTERVAL_MS : FRAME_INTERVAL_MS) - (performance.now() - tick);
      if (wait > 0) await pause(wait);
    }
    return null;
  }

  ui({ phase: "align", prompt: "请将面部置于框内", feedback: "正在寻找人脸…" });
  const aligned = await loop(false, ({ face, frame }) => {
    const centred = face && Math.abs(face.x + face.w / 2 - frame.width / 2) < frame.width * 0.2;
    ui({ phase: "align", prompt: "请将面部置于框内",
         feedback: !face ? "未检测到人脸" : centred ? "已找到人脸，请保持不动" : "请将面部移到画面中央" });
    return centred;
  }, 15000);
  if (!aligned) return { noFace: true };

  const actions = task.challenge || [];
  const windowS = task.challenge_action_s || 6;
  const schedule = actions.map((_, i) => task.challenge_prompts_s?.[i] ?? (NEUTRAL_MS / 1000 + i * (windowS * 0.6)));
  const responseS = Math.min(windowS, 3.5);  // the server judges each action within about 3 s of its prompt
  const endS = (schedule.length ? schedule[schedule.length - 1] : 0) + responseS + SETTLE_MS / 1000;
  let neutral = null;
  let current = -1;
  let seen = false;
  ui({ phase: "record", prompt: "请保持不动", feedback: "正在录制" });
  await loop(true, ({ face }) => {
    if (origin === null) return false;
    const t = (performance.now() - origin) / 1000;
    if (face && current < 0) neutral = face;
    while (current + 1 < actions.length && t >= schedule[current + 1]) {
      current += 1;
      seen = false;
      promptsS.push(Math.max(t, frames.length ? frames[frames.length - 1].time_s : 0));
      speak(promptFor(actions[current]));
    }
    if (current >= 0) {
      const result = actionSeen(actions[current], face, neutral);
      seen = seen || result === true;
      ui({ phase: "action", prompt: promptFor(actions[current]), progress: [current, actions.length],
           feedback: !face ? "未检测到人脸，请面向屏幕" : result === null ? "请做动作" : seen ? "动作已完成" : "请继续" });
    }
    return t >= endS || (stopEarly?.() && frames.length >= 5);
  }, (endS + 10) * 1000, () => {
    if (origin === null) return false;
    const t = (performance.now() - origin) / 1000;
    const asked = actions.findIndex((a, i) => FACE_ACTIONS.has(a) && t >= schedule[i] && t <= schedule[i] + responseS);
    return asked >= 0 && frames.length < MAX_FRAMES - 20;  // the server takes 90 frames a session
  });
  ui({ phase: "done", prompt: "录制完成", feedback: "正在保存…" });

  if (frames.length < 2) return { noFace: true };
  stats.sessionFrames = frames.length;
  stats.sessionSeconds = frames[frames.length - 1].time_s - frames[0].time_s;
  const before = frames.filter((f) => promptsS.length === 0 || f.time_s < promptsS[0]);
  const pool = before.length ? before : frames;
  const frontal = (f) => f.face.score - Math.abs(noseOffset(f.face));
  const best = pool.reduce((a, b) => (frontal(b) > frontal(a) ? b : a), pool[0]);
  const sceneTime = scene ? Math.min(Math.max(scene.time_s, frames[0].time_s), frames[frames.length - 1].time_s)
    : frames[0].time_s;
  return { noFace: false, frames, promptsS, scene: scene && { ...scene, time_s: sceneTime },
           cropIndex: frames.indexOf(best), frameSize, lastFace };
}
