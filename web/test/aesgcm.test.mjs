// Unit tests of web/src/aesgcm.js (XEP-0454 crypto) in node 20 (its
// globalThis.crypto.subtle is WebCrypto, as in the browser):
//   node --test test/        (npm test in web/; tests/web runs it too)
// Interop: vectors made by python3's cryptography (OpenSSL's AES-GCM,
// aesgcm-vectors.json, from aesgcm_vectors.py) are decrypted here, and,
// when python3 with cryptography is installed, fresh files go both ways
// between the two implementations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as g from "../src/aesgcm.js";

const here = dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(join(here, "aesgcm-vectors.json"), "utf8")).vectors;

test("decrypts files encrypted by python3 cryptography (OpenSSL)", async () => {
  assert.ok(vectors.length >= 6);
  for (const v of vectors) {
    const plain = await g.decrypt(g.fromHex(v.cipher), g.fromHex(v.key), g.fromHex(v.iv));
    assert.equal(g.toHex(plain), v.plain, v.name);
    assert.equal(v.cipher.length / 2, v.plain.length / 2 + g.TAG_BYTES, v.name + ": tag appended");
  }
});

test("encrypts what python3 cryptography produces for the same key and IV", async () => {
  // WebCrypto has no way to pass an IV to our encrypt() (it makes its
  // own), so compare the primitive with the vectors' key and IV.
  for (const v of vectors) {
    const k = await crypto.subtle.importKey("raw", g.fromHex(v.key), "AES-GCM", false, ["encrypt"]);
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: g.fromHex(v.iv) }, k, g.fromHex(v.plain)));
    assert.equal(g.toHex(ct), v.cipher, v.name);
  }
});

test("a flipped bit anywhere, a wrong key or IV, a cut file: refused", async () => {
  const v = vectors.find((x) => x.name === "short text");
  const ct = g.fromHex(v.cipher);
  const key = g.fromHex(v.key);
  const iv = g.fromHex(v.iv);
  for (const i of [0, 10, ct.length - 16, ct.length - 1]) {
    const bad = ct.slice();
    bad[i] ^= 1;
    await assert.rejects(g.decrypt(bad, key, iv), g.DecryptError, `bit flipped at ${i}`);
  }
  const k2 = key.slice();
  k2[0] ^= 0x80;
  await assert.rejects(g.decrypt(ct, k2, iv), g.DecryptError);
  const iv2 = iv.slice();
  iv2[11] ^= 1;
  await assert.rejects(g.decrypt(ct, key, iv2), g.DecryptError);
  await assert.rejects(g.decrypt(ct.slice(0, ct.length - 1), key, iv), g.DecryptError);
  await assert.rejects(g.decrypt(ct.slice(0, 8), key, iv), g.DecryptError);
});

test("encrypt: fresh key and IV each time, tag appended, round trip", async () => {
  const plain = new TextEncoder().encode("a photo, say");
  const a = await g.encrypt(plain);
  const b = await g.encrypt(plain);
  assert.equal(a.key.length, 32);
  assert.equal(a.iv.length, 12);
  assert.equal(a.ciphertext.length, plain.length + 16);
  assert.notEqual(g.toHex(a.key), g.toHex(b.key));
  assert.notEqual(g.toHex(a.iv), g.toHex(b.iv));
  assert.notEqual(g.toHex(a.ciphertext), g.toHex(b.ciphertext));
  assert.deepEqual(await g.decrypt(a.ciphertext, a.key, a.iv), plain);
});

const python = (() => {
  try {
    execFileSync("python3", ["-c", "import cryptography.hazmat.primitives.ciphers.aead"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

test("fresh files both ways with python3 cryptography", { skip: !python && "python3 cryptography is not installed" }, async () => {
  const py = (op, key, iv, input) => new Uint8Array(execFileSync("python3", [join(here, "aesgcm_vectors.py"), op, g.toHex(key), g.toHex(iv)], { input }));
  for (const n of [0, 1, 4095, 300 * 1024 + 3]) {
    const plain = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
    const big = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) big.set(plain.subarray(0, Math.min(65536, n - i)), i);
    // ours -> python
    const a = await g.encrypt(big);
    assert.deepEqual(py("decrypt", a.key, a.iv, a.ciphertext), big, `python decrypts ours, ${n} bytes`);
    // python -> ours
    const key = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = py("encrypt", key, iv, big);
    assert.deepEqual(await g.decrypt(ct, key, iv), big, `we decrypt python's, ${n} bytes`);
  }
});

test("links: made and read, IV first then key", () => {
  const key = g.fromHex("11".repeat(32));
  const iv = g.fromHex("22".repeat(12));
  const u = g.link("https://up.example.org:5281/upload/abc/def/x%20y.jpg", key, iv);
  assert.equal(u, "aesgcm://up.example.org:5281/upload/abc/def/x%20y.jpg#" + "22".repeat(12) + "11".repeat(32));
  const p = g.parse(u);
  assert.equal(p.host, "up.example.org:5281");
  assert.equal(p.path, "/upload/abc/def/x%20y.jpg");
  assert.equal(p.https, "https://up.example.org:5281/upload/abc/def/x%20y.jpg");
  assert.deepEqual(p.key, key);
  assert.deepEqual(p.iv, iv);
  // An http upload link (loopback) keeps its host and path; only the
  // fragment and the scheme change.
  assert.equal(g.link("http://localhost:5280/upload/a/b.png", key, iv).split("#")[0], "aesgcm://localhost:5280/upload/a/b.png");
  // 16-byte IV (older Conversations).
  const old = g.parse("aesgcm://h.example/f.png#" + "33".repeat(16) + "44".repeat(32));
  assert.equal(old.iv.length, 16);
  assert.deepEqual(old.key, g.fromHex("44".repeat(32)));
  // White space around the one link is fine.
  assert.ok(g.parse(`\n ${u} \n`));
});

test("links: anything else is not one", () => {
  const frag = "22".repeat(12) + "11".repeat(32);
  for (const s of [
    null,
    "",
    "https://h.example/f.png#" + frag,
    "aesgcm://h.example/f.png",
    "aesgcm://h.example/f.png#" + frag.slice(2),
    "aesgcm://h.example/f.png#" + frag + "00",
    "aesgcm://h.example/f.png#" + frag.replace("2", "g"),
    "look: aesgcm://h.example/f.png#" + frag,
    "aesgcm://h.example/f.png#" + frag + " and more",
    "aesgcm://user:pw@h.example/f.png#" + frag,
    "aesgcm://h.example/a b.png#" + frag,
    "aesgcm://#" + frag,
  ]) {
    assert.equal(g.parse(s), null, String(s));
  }
});

test("fetchURL: https, or http for the app's own http origins", () => {
  const p = g.parse("aesgcm://localhost:5280/upload/a/b.png#" + "22".repeat(12) + "11".repeat(32));
  assert.equal(g.fetchURL(p, []), "https://localhost:5280/upload/a/b.png");
  assert.equal(g.fetchURL(p, ["http://localhost:5280"]), "http://localhost:5280/upload/a/b.png");
  assert.equal(g.fetchURL(p, ["http://localhost:5281", "http://evil.example"]), "https://localhost:5280/upload/a/b.png");
});

test("types from the bytes, then the name", () => {
  const b = (...x) => new Uint8Array(x.flatMap((v) => (typeof v === "string" ? [...v].map((c) => c.charCodeAt(0)) : [v])));
  const png = b(0x89, "PNG", 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13);
  const jpeg = b(0xff, 0xd8, 0xff, 0xe0, 0, 16, "JFIF");
  assert.equal(g.typeOf(png, "x.png"), "image/png");
  assert.equal(g.typeOf(png, "x.jpg"), "image/png", "bytes win over a wrong extension");
  assert.equal(g.typeOf(jpeg, "x"), "image/jpeg");
  assert.equal(g.typeOf(b("GIF89a"), "x.gif"), "image/gif");
  assert.equal(g.typeOf(b("RIFF", 0, 0, 0, 0, "WEBPVP8 "), "x"), "image/webp");
  assert.equal(g.typeOf(b("%PDF-1.4\n"), "report.bin"), "application/pdf");
  assert.equal(g.typeOf(b("OggS", 0, 2), "voice.opus"), "audio/ogg");
  assert.equal(g.typeOf(b(0x1a, 0x45, 0xdf, 0xa3, 1), "voice.weba"), "audio/webm");
  assert.equal(g.typeOf(b(0x1a, 0x45, 0xdf, 0xa3, 1), "clip.webm"), "video/webm");
  assert.equal(g.typeOf(b(0, 0, 0, 0x20, "ftypisom"), "clip.mp4"), "video/mp4");
  assert.equal(g.typeOf(b(0, 0, 0, 0x20, "ftypM4A "), "a.m4a"), "audio/mp4");
  assert.equal(g.typeOf(b("ID3", 4), "song.mp3"), "audio/mpeg");
  assert.equal(g.typeOf(b("hello"), "notes.txt"), "text/plain");
  assert.equal(g.typeOf(b("hello"), "notes.docx"), "application/octet-stream");
  // An HTML file is never given an HTML type: unknown bytes fall back to
  // the extension table, which has no text/html.
  assert.equal(g.typeOf(b("<html><script>"), "page.html"), "application/octet-stream");
});

test("extFor: the extension an upload is named with", () => {
  assert.equal(g.extFor("sunset.PNG", "image/png"), "png");
  assert.equal(g.extFor("photo", "image/jpeg"), "jpg");
  assert.equal(g.extFor("voice-20261203.webm", "audio/webm"), "weba");
  assert.equal(g.extFor("Quarterly report.pdf", "application/pdf"), "pdf");
  assert.equal(g.extFor("x.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"), "docx");
  assert.equal(g.extFor("no extension", ""), "bin");
  assert.equal(g.extFor("evil.ht ml", ""), "bin");
});
