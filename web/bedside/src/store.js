// What the browser keeps (IndexedDB, through `idb`): the device credential and the outbox of unsent results.
// IndexedDB, not localStorage: it survives reloads and closed tabs and holds the sessions' JPEGs.
import { openDB } from "idb";

const DB_NAME = "bedcheck-bedside";

function db() {
  return openDB(DB_NAME, 1, {
    upgrade(database) {
      database.createObjectStore("kv");
      const outbox = database.createObjectStore("outbox", { keyPath: "idempotency_key" });
      outbox.createIndex("created", "created_ms");
    },
  });
}

export async function credential() {
  return (await db()).get("kv", "credential");
}

export async function saveCredential(value) {
  await (await db()).put("kv", value, "credential");
}

export async function forgetCredential() {
  await (await db()).delete("kv", "credential");
}

// The last ward board and its tasks: an offline tablet still shows its beds and checks them after a reload.
export async function saveBoard(value) {
  await (await db()).put("kv", value, "board");
}

export async function lastBoard() {
  return (await db()).get("kv", "board");
}

export async function enqueue(entry) {
  await (await db()).put("outbox", { ...entry, created_ms: Date.now(), attempts: 0 });
}

export async function pending() {
  return (await db()).getAllFromIndex("outbox", "created");
}

export async function markAttempt(key, error) {
  const database = await db();
  const entry = await database.get("outbox", key);
  if (entry) await database.put("outbox", { ...entry, attempts: entry.attempts + 1, last_error: error });
}

export async function remove(key) {
  await (await db()).delete("outbox", key);
}
