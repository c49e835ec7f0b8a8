// Bluetick Web's service worker: keeps the app shell so the app opens
// with no network (the chats themselves are in IndexedDB). The build fills
// in the version and the list of files.
const VERSION = "f7bc774df0";
const SHELL = ["/","/app-6c339cb949.js","/app-9a6945021f.css","/icon-192.png","/icon-512.png","/manifest.webmanifest"];
const CACHE = "bluetick-shell-" + VERSION;

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("bluetick-shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (e) => {
  const req = e.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== location.origin) return;
  if (req.mode === "navigate") {
    // The shell first: it opens instantly, online or not.
    e.respondWith(caches.match("/", { cacheName: CACHE }).then((r) => r || fetch(req)));
    return;
  }
  if (SHELL.includes(url.pathname)) {
    e.respondWith(caches.match(url.pathname, { cacheName: CACHE }).then((r) => r || fetch(req)));
  }
  // Everything else (host-meta, config.json) goes to the network.
});
