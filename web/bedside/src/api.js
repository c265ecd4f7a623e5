// The server's device API over fetch. The credential is the paired device's bearer token, kept by the browser.
import { credential } from "./store.js";

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token ?? (await credential())?.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   cache: "no-store" });
  } catch (err) {
    throw new ApiError("network", String(err), 0);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(data?.code || `http_${response.status}`, data?.message || text.slice(0, 200), response.status);
  }
  return data;
}
