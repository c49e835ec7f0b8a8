// Bluetick Web's service worker: keeps the app shell so the app opens
// with no network (the chats themselves are in IndexedDB). The build fills
// in the version and the list of files.
const VERSION = "067dcdf50c";
const SHELL = ["/","/app-01c8772665.css","/app-YZADY2JX.js","/chunk-AZCGKXLD.js","/chunk-FSRPMVAS.js","/chunk-GYEKQOCQ.js","/chunk-GZAWSEEK.js","/chunk-OZGH2YIR.js","/chunk-SHRWNPOA.js","/icon-192.png","/icon-512.png","/manifest.webmanifest"];
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
  if (req.mode === "navigate" && (url.pathname === "/" || url.pathname === "/index.html")) {
    // The shell first: it opens instantly, online or not. Other paths
    // (an uploaded file opened in a tab, /healthz) go to the server.
    e.respondWith(caches.match("/", { cacheName: CACHE }).then((r) => r || fetch(req)));
    return;
  }
  if (SHELL.includes(url.pathname)) {
    e.respondWith(caches.match(url.pathname, { cacheName: CACHE }).then((r) => r || fetch(req)));
  }
  // Everything else (host-meta, config.json) goes to the network.
});

// ---- notifications (settings.js) ----
// A Web Push from the server's gateway carries no text (node and count
// only, encrypted): it shows "New message", and the app fetches the
// message itself when opened. Open pages are told, so they (and the tests)
// can see what was shown.
self.addEventListener("push", (e) => {
  const title = "New message";
  const opts = { body: "Open Bluetick to read it.", tag: "bluetick-push", icon: "/icon-192.png", data: { push: true } };
  e.waitUntil(
    self.registration.showNotification(title, opts).then(() =>
      self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((cs) => {
        for (const c of cs) c.postMessage({ type: "push-shown", title });
      }),
    ),
  );
});

// A click focuses an open page (on the chat the notification is about) or
// opens the app.
self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const chat = e.notification.data?.chat;
  e.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((cs) => {
      const c = cs[0];
      if (c) {
        if (chat) c.postMessage({ type: "open-chat", chat });
        return c.focus();
      }
      return self.clients.openWindow("/");
    }),
  );
});
