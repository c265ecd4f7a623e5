// Results wait here until the server acknowledges them; the idempotency key makes a resend harmless, so a
// result sent twice (a reload mid-upload) is still recorded once. One tab syncs at a time (Web Locks).
import { api, ApiError } from "./api.js";
import { enqueue, markAttempt, pending, remove } from "./store.js";

const listeners = new Set();
export const recent = [];  // acknowledged this session: {bed_label, verdict, error}

export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function notify() {
  const waiting = await pending();
  for (const listener of listeners) listener(waiting);
}

export async function submit(result, meta) {
  await enqueue({ idempotency_key: result.idempotency_key, result, meta });
  await notify();
  return sync();
}

async function syncNow() {
  const entries = await pending();
  for (const entry of entries) {
    let answer;
    try {
      answer = await api("/api/v1/device/results/batch", { method: "POST", body: { results: [entry.result] } });
    } catch (err) {
      if (err instanceof ApiError && (err.code === "network" || err.status >= 500 || err.status === 429)) {
        await markAttempt(entry.idempotency_key, err.code);
        break;  // offline or the server is busy: keep everything, try again later
      }
      if (err instanceof ApiError && err.status === 401) {
        await markAttempt(entry.idempotency_key, err.code);
        break;  // the credential is gone: nothing can be sent, nothing is dropped
      }
      // A refusal of the whole request (its body) is final for this result: kept in the list, not resent.
      recent.unshift({ meta: entry.meta, error: err.code, message: err.message });
      await remove(entry.idempotency_key);
      continue;
    }
    const item = answer.items[0];
    recent.unshift({ meta: entry.meta, verdict: item.ack?.verdict, late: item.ack?.late, error: item.error?.code,
                     message: item.error?.message });
    await remove(entry.idempotency_key);
  }
  await notify();
  return recent[0];
}

export function sync() {
  if (navigator.locks?.request) return navigator.locks.request("bedcheck-outbox", syncNow);
  return syncNow();
}

export function startSyncLoop() {
  window.addEventListener("online", () => { sync(); });
  setInterval(() => { if (navigator.onLine) sync(); }, 15000);
  notify();
  if (navigator.onLine) sync();
}
