// Face feedback on the device: OpenCV Zoo's YuNet (the server's own detector), run by onnxruntime-web's
// WebAssembly backend. Both ship in registry packages and are served from /bedside: nothing comes from a CDN.
// Feedback only: the server re-judges every session itself.
import * as ort from "onnxruntime-web/wasm";

// The input side: the model takes any multiple of 32 (server/bedside/detector_model.py). 320 px finds a face of
// 30 px and more in a 640 px frame, and a patient at the bed fills far more: a quarter of the work of 640.
const SIZE = 320;
const STRIDES = [8, 16, 32];
const SCORE_MIN = 0.6;

let session = null;
let input = null;
// Counted for support staff and the benchmark (scripts/bench_bedside.py): detections and their time.
export const stats = { detections: 0, detectMs: 0 };

export async function loadDetector(base = "/bedside/") {
  if (session) return session;
  ort.env.wasm.wasmPaths = `${base}ort/`;
  ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer without cross-origin isolation
  ort.env.logLevel = "error";  // the model carries unused initializers: ORT warns of each at load
  session = await ort.InferenceSession.create(`${base}models/yunet.onnx`, { executionProviders: ["wasm"] });
  input = document.createElement("canvas");
  input.width = input.height = SIZE;
  return session;
}

// The frame letterboxed into 640x640 as OpenCV's blobFromImage feeds YuNet: BGR, 0-255, NCHW.
function tensorFrom(source, width, height) {
  const scale = Math.min(SIZE / width, SIZE / height);
  const ctx = input.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, SIZE, SIZE);
  ctx.drawImage(source, 0, 0, width * scale, height * scale);
  const rgba = ctx.getImageData(0, 0, SIZE, SIZE).data;
  const plane = SIZE * SIZE;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i += 1) {
    data[i] = rgba[i * 4 + 2];
    data[plane + i] = rgba[i * 4 + 1];
    data[2 * plane + i] = rgba[i * 4];
  }
  return { tensor: new ort.Tensor("float32", data, [1, 3, SIZE, SIZE]), scale };
}

function iou(a, b) {
  const x1 = Math.max(a.x, b.x), y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.w, b.x + b.w), y2 = Math.min(a.y + a.h, b.y + b.h);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  return inter / (a.w * a.h + b.w * b.h - inter);
}

// Faces in the frame's own pixels, largest first: {x, y, w, h, score, eyes: [[x,y],[x,y]], nose, mouth}.
export async function detectFaces(source, width, height) {
  const began = performance.now();
  const { tensor, scale } = tensorFrom(source, width, height);
  const out = await session.run({ input: tensor });
  const faces = [];
  for (const stride of STRIDES) {
    const cols = SIZE / stride;
    const cls = out[`cls_${stride}`].data, obj = out[`obj_${stride}`].data;
    const bbox = out[`bbox_${stride}`].data, kps = out[`kps_${stride}`].data;
    for (let i = 0; i < cls.length; i += 1) {
      const score = Math.sqrt(Math.min(Math.max(cls[i], 0), 1) * Math.min(Math.max(obj[i], 0), 1));
      if (score < SCORE_MIN) continue;
      const c = i % cols, r = Math.floor(i / cols);
      const cx = (c + bbox[i * 4]) * stride, cy = (r + bbox[i * 4 + 1]) * stride;
      const w = Math.exp(bbox[i * 4 + 2]) * stride, h = Math.exp(bbox[i * 4 + 3]) * stride;
      const points = [];
      for (let k = 0; k < 5; k += 1) {
        points.push([((kps[i * 10 + 2 * k] + c) * stride) / scale, ((kps[i * 10 + 2 * k + 1] + r) * stride) / scale]);
      }
      faces.push({ x: (cx - w / 2) / scale, y: (cy - h / 2) / scale, w: w / scale, h: h / scale, score,
                   eyes: [points[0], points[1]], nose: points[2], mouth: [points[3], points[4]] });
    }
  }
  stats.detections += 1;
  stats.detectMs += performance.now() - began;
  faces.sort((a, b) => b.score - a.score);
  const kept = [];
  for (const face of faces) if (kept.every((k) => iou(k, face) < 0.3)) kept.push(face);
  return kept.sort((a, b) => b.w * b.h - a.w * a.h);
}

// Where the nose sits between the eyes, -0.5..0.5 across; about 0 facing the camera. For feedback on turns only.
export function noseOffset(face) {
  const [left, right] = face.eyes[0][0] < face.eyes[1][0] ? face.eyes : [face.eyes[1], face.eyes[0]];
  const span = right[0] - left[0];
  if (span <= 0) return 0;
  return (face.nose[0] - (left[0] + right[0]) / 2) / span;
}

export function noseDrop(face) {
  const eyeY = (face.eyes[0][1] + face.eyes[1][1]) / 2;
  const mouthY = (face.mouth[0][1] + face.mouth[1][1]) / 2;
  const height = mouthY - eyeY;
  return height > 0 ? (face.nose[1] - eyeY) / height : 0.5;
}
