// A check as the server's upload contract wants it (models/wire/results.py: ResultUpload with its
// CaptureSession). The device's own report is evidence only: the server re-judges the session.
const APP_VERSION = "bedside-web/0.1";

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

function box(rect) {
  return { left: Math.round(rect.x), top: Math.round(rect.y), right: Math.round(rect.x + rect.w),
           bottom: Math.round(rect.y + rect.h) };
}

function base(task, outcome, note) {
  return { idempotency_key: newKey(), task_id: task.task_id, nonce: task.nonce, outcome,
           captured_at: new Date().toISOString(), note: note || "", engine_version: "", frames_used: 0 };
}

export function faceResult(task, session, { note, cannotTakePart } = {}) {
  const frames = session.frames.map((f) => ({ time_s: Math.round(f.time_s * 1000) / 1000, region: box(f.region),
                                              box: box(f.face), jpeg_b64: f.jpeg_b64, sha256: f.sha256 }));
  const crop = session.frames[session.cropIndex];
  return {
    ...base(task, "face_captured", note),
    frames_used: frames.length,
    liveness: cannotTakePart
      ? { is_live: false, score: 0, method: "cannot_take_part", cannot_take_part: cannotTakePart,
          reasons: [`cannot_take_part:${cannotTakePart}`] }
      : { is_live: true, score: 0.5, method: "challenge", challenge: task.challenge || [],
          reasons: ["browser_feedback_only"] },
    face_crop_jpeg_b64: crop.jpeg_b64,
    evidence_sha256: crop.sha256,
    session: { frame_width: session.frameSize[0], frame_height: session.frameSize[1], frames,
               prompts_s: session.promptsS.map((t) => Math.round(t * 1000) / 1000), crop_frame: session.cropIndex,
               scene_time_s: Math.round(session.scene.time_s * 1000) / 1000 },
    scene_jpeg_b64: session.scene.jpeg_b64,
    scene_source: "tablet",
  };
}

export function bedEmptyResult(task, note) {
  return base(task, "bed_empty", note);
}

export function noFaceResult(task, note) {
  return base(task, "no_face", note);
}

export const VERSION = APP_VERSION;
