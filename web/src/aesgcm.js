// XEP-0454 (OMEMO media sharing) crypto, pure WebCrypto: a file is
// encrypted with AES-256-GCM under a fresh random key and IV, the
// ciphertext (with GCM's 16-byte tag appended, as WebCrypto and every
// other implementation produce it) is uploaded, and the link is shared as
//
//   aesgcm://host/path#<hex IV (12 bytes)><hex key (32 bytes)>
//
// inside the end-to-end encrypted message. The fragment never reaches a
// server (browsers do not send it, and the app never fetches an aesgcm
// URL as such: it fetches https://host/path and decrypts here).
// Older Conversations versions used a 16-byte IV (96 hex digits); those
// are read too. No DOM here, so node runs the tests (web/test/).

export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

const subtle = () => globalThis.crypto.subtle;

export function toHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(s) {
  if (s.length % 2 || /[^0-9a-f]/i.test(s)) throw new Error("not hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const bytesOf = (d) => (d instanceof Uint8Array ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));

async function importKey(key, use) {
  if (key.length !== KEY_BYTES) throw new Error(`AES-256-GCM needs a ${KEY_BYTES}-byte key, not ${key.length}`);
  return subtle().importKey("raw", key, { name: "AES-GCM" }, false, [use]);
}

// encrypt returns the ciphertext (tag appended) and the fresh key and IV.
export async function encrypt(plain) {
  const key = globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const k = await importKey(key, "encrypt");
  const ct = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv, tagLength: 128 }, k, bytesOf(plain)));
  return { ciphertext: ct, key, iv };
}

// decrypt checks the tag and returns the plaintext; it throws a
// DecryptError when the file was altered or the key is not its key.
export async function decrypt(ciphertext, key, iv) {
  const ct = bytesOf(ciphertext);
  if (ct.length < TAG_BYTES) throw new DecryptError("the file is shorter than its authentication tag");
  const k = await importKey(key, "decrypt");
  try {
    return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv, tagLength: 128 }, k, ct));
  } catch {
    throw new DecryptError("the authentication tag does not match: the file was altered or the key is wrong");
  }
}

export class DecryptError extends Error {
  constructor(msg) {
    super(msg);
    this.name = "DecryptError";
  }
}

// A body that is one aesgcm:// link and nothing else (surrounding white
// space allowed), as Conversations, Monal, Dino, Gajim and profanity send.
const RE = /^\s*aesgcm:\/\/([^\s#]+)#([0-9a-fA-F]{88}|[0-9a-fA-F]{96})\s*$/;

// parse reads an aesgcm link: {host, path (with any query), key, iv,
// https (the link with https: instead of aesgcm:)}, or null when s is not
// exactly one well-formed aesgcm link.
export function parse(s) {
  const m = typeof s === "string" ? RE.exec(s) : null;
  if (!m) return null;
  let u;
  try {
    u = new URL("https://" + m[1]);
  } catch {
    return null;
  }
  // No user:password@ and nothing the URL parser had to rewrite.
  if (u.username || u.password || u.protocol !== "https:" || !u.hostname) return null;
  const frag = fromHex(m[2]);
  const ivLen = frag.length - KEY_BYTES;
  return {
    host: u.host, // with the port, if any
    path: u.pathname + u.search,
    https: u.href,
    iv: frag.slice(0, ivLen),
    key: frag.slice(ivLen),
  };
}

// link makes the aesgcm link of an uploaded file from its http(s) GET URL.
export function link(getURL, key, iv) {
  const u = new URL(getURL);
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error("not an http(s) link");
  u.hash = "";
  return "aesgcm://" + u.href.slice(u.protocol.length + 2) + "#" + toHex(iv) + toHex(key);
}

// fetchURL is where to download a parsed link from: https, as XEP-0454
// says, except on an origin the app itself uses over plain http (its own
// page or its own upload service, e.g. on loopback), where http is what
// the upload service speaks. httpOrigins are "http://host[:port]" strings.
export function fetchURL(p, httpOrigins = []) {
  const plain = "http://" + p.host;
  return httpOrigins.includes(plain) ? plain + p.path : p.https;
}

// ---- what a decrypted file is ------------------------------------------------------

const EXT = {
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", avif: "image/avif", bmp: "image/bmp",
  mp4: "video/mp4", m4v: "video/mp4", webm: "video/webm", mov: "video/quicktime", "3gp": "video/3gpp",
  ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/ogg", weba: "audio/webm", mp3: "audio/mpeg", m4a: "audio/mp4", aac: "audio/aac", wav: "audio/wav",
  pdf: "application/pdf", txt: "text/plain",
};

// extFor is the extension a file is uploaded under (the upload's name is
// random; only this is kept, as Conversations does, for the receiver to
// know what it gets): the name's own when it is a known one, else one
// for its type (a browser's voice note, audio/webm, becomes .weba).
export function extFor(name, type) {
  const e = String(name).includes(".") ? String(name).split(".").pop().toLowerCase() : "";
  if (type === "audio/webm") return "weba";
  if (EXT[e] && (EXT[e] === type || !type || type === "application/octet-stream")) return e;
  const byType = Object.keys(EXT).find((k) => EXT[k] === type);
  if (byType) return byType;
  return /^[a-z0-9]{1,8}$/.test(e) ? e : "bin";
}

export const typeOfExt = (name) => EXT[String(name).split(".").pop().toLowerCase()] ?? "application/octet-stream";

const at = (b, i, ...v) => v.every((x, j) => b[i + j] === (typeof x === "string" ? x.charCodeAt(0) : x));

// sniff tells a file's type from its first bytes, or "" when unknown.
export function sniff(b) {
  b = bytesOf(b);
  if (at(b, 0, 0x89, "P", "N", "G", 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (at(b, 0, 0xff, 0xd8, 0xff)) return "image/jpeg";
  if (at(b, 0, "G", "I", "F", "8")) return "image/gif";
  if (at(b, 0, "R", "I", "F", "F") && at(b, 8, "W", "E", "B", "P")) return "image/webp";
  if (at(b, 0, "R", "I", "F", "F") && at(b, 8, "W", "A", "V", "E")) return "audio/wav";
  if (at(b, 0, "B", "M") && b.length > 26 && at(b, 14, 40, 0, 0, 0)) return "image/bmp";
  if (at(b, 0, "%", "P", "D", "F", "-")) return "application/pdf";
  if (at(b, 0, "O", "g", "g", "S")) return "audio/ogg";
  if (at(b, 0, 0x1a, 0x45, 0xdf, 0xa3)) return "video/webm"; // Matroska/WebM (voice notes too: the extension decides audio)
  if (at(b, 4, "f", "t", "y", "p")) {
    const brand = String.fromCharCode(...b.slice(8, 12));
    if (brand === "avif" || brand === "avis") return "image/avif";
    if (brand.startsWith("M4A")) return "audio/mp4";
    if (brand === "qt  ") return "video/quicktime";
    if (brand.startsWith("3g")) return "video/3gpp";
    return "video/mp4";
  }
  if (at(b, 0, "I", "D", "3") || (b[0] === 0xff && (b[1] & 0xe0) === 0xe0 && b.length > 2)) return "audio/mpeg";
  return "";
}

// typeOf decides a decrypted file's type: its bytes when they say, else
// its name's extension; the extension refines a container both audio and
// video use (.ogg/.opus/.m4a vs video).
export function typeOf(bytes, name) {
  const s = sniff(bytes);
  const e = typeOfExt(name);
  if (!s) return e;
  if ((s === "video/webm" && e.startsWith("audio/")) || (s === "video/mp4" && e.startsWith("audio/"))) return e;
  if (s === "audio/ogg" && e.startsWith("video/")) return "video/ogg";
  return s;
}
