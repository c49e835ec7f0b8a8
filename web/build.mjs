// Builds Bluetick Web into ../internal/webapp/dist (committed; embedded by
// the Go binary). Deterministic: the same sources give the same bytes, so
// CI can rebuild and compare. Prints the gzip size of the JavaScript a
// first load fetches (budget: 250 KB).
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "internal", "webapp", "dist");
const BUDGET = 250 * 1024;

// @xmpp/client leaves SCRAM out of browser builds (its package.json
// "browser" field) from the days its SCRAM needed Node's crypto; the
// sasl-scram-sha-1 it depends on now uses WebCrypto, so put it back:
// without it a browser could only sign in with PLAIN.
const scram = {
  name: "scram",
  setup(b) {
    b.onResolve({ filter: /^@xmpp\/sasl-scram-sha-1$/ }, () => ({
      path: join(here, "node_modules", "@xmpp", "sasl-scram-sha-1", "index.js"),
    }));
    // @xmpp/resolve's DNS SRV lookup is Node-only (its "browser" field
    // misses the .js name); the app is given its WebSocket URL by host-meta.
    b.onResolve({ filter: /^node:dns$/ }, () => ({ path: "dns", namespace: "empty" }));
    b.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "export default {};" }));
  },
};

const res = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  write: false,
  // The OMEMO code (the Signal protocol, ~1 MB) is imported lazily, so
  // it is split into chunks the first load does not fetch.
  splitting: true,
  outdir: out,
  entryNames: "app-[hash]",
  chunkNames: "chunk-[hash]",
  metafile: true,
  legalComments: "none",
  plugins: [scram],
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
const outName = (f) => f.path.slice(f.path.lastIndexOf("/") + 1);
const entry = res.outputFiles.find((f) => /^app-.*\.js$/.test(outName(f)));
const js = entry.contents;
// What a first load fetches: the entry and the chunks it imports statically.
const firstLoad = new Set();
const walk = (name) => {
  if (firstLoad.has(name)) return;
  firstLoad.add(name);
  const meta = Object.entries(res.metafile.outputs).find(([k]) => k.endsWith("/" + name))?.[1];
  for (const i of meta?.imports ?? []) if (i.kind === "import-statement") walk(i.path.slice(i.path.lastIndexOf("/") + 1));
};
walk(outName(entry));
// style.css, then each feature's own src/ui/*.css (in name order).
const uiCss = readdirSync(join(here, "src", "ui")).filter((f) => f.endsWith(".css")).sort();
const css = Buffer.concat([readFileSync(join(here, "src", "style.css")), ...uiCss.map((f) => readFileSync(join(here, "src", "ui", f)))]);
const hash = (b) => createHash("sha256").update(b).digest("hex").slice(0, 10);
const jsName = outName(entry);
const cssName = `app-${hash(css)}.css`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const files = {};
const put = (name, data) => {
  writeFileSync(join(out, name), data);
  files[name] = data;
};
for (const f of res.outputFiles) if (f.path.endsWith(".js")) put(outName(f), f.contents);
put(cssName, css);
for (const f of readdirSync(join(here, "static")).sort()) {
  if (f === "index.html" || f === "sw.js") continue;
  put(f, readFileSync(join(here, "static", f)));
}
const index = readFileSync(join(here, "static", "index.html"), "utf8")
  .replace("%CSS%", "/" + cssName)
  .replace("%JS%", "/" + jsName);
put("index.html", index);
// The service worker caches the app shell; its version changes with any file.
const shell = ["/", ...Object.keys(files).filter((f) => f !== "index.html").sort().map((f) => "/" + f)];
const version = hash(Buffer.concat(Object.keys(files).sort().map((f) => Buffer.from(files[f]))));
const sw = readFileSync(join(here, "static", "sw.js"), "utf8")
  .replace('"%VERSION%"', JSON.stringify(version))
  .replace('["%SHELL%"]', JSON.stringify(shell));
put("sw.js", sw);

// Precompressed copies for clients that accept gzip (deterministic: no
// name or time in the header).
let jsGz = 0;
for (const [name, data] of Object.entries(files)) {
  if (!/\.(js|css|html|webmanifest|svg|json)$/.test(name)) continue;
  const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
  if (gz.length < data.length) writeFileSync(join(out, name + ".gz"), gz);
  if (firstLoad.has(name)) jsGz += gz.length;
}
const kb = (n) => (n / 1024).toFixed(1) + " KB";
console.log(`first-load JavaScript: ${[...firstLoad].join(" ")} ${kb(js.length)}, gzip ${kb(jsGz)} (budget ${kb(BUDGET)})`);
if (jsGz > BUDGET) {
  console.error("over the JavaScript budget");
  process.exit(1);
}
