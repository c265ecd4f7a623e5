// The bedside app's service worker: the shell, bundles, runtime and model are cached at install, so the app
// opens without a network; API calls always go to the network (results wait in the IndexedDB outbox instead).
const VERSION = "__VERSION__";
const CACHE = `bedside-${VERSION}`;
const PRECACHE = __PRECACHE__;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("bedside-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith("/bedside/")) {
    return;
  }
  if (url.pathname === "/bedside/" || url.pathname === "/bedside/index.html") {
    // The shell: the network when there is one (a new build), the cached copy when there is none.
    event.respondWith(fetch(event.request).then((response) => {
      if (response.ok) caches.open(CACHE).then((cache) => cache.put("/bedside/", response.clone()));
      return response;
    }).catch(() => caches.match("/bedside/")));
    return;
  }
  event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
});
