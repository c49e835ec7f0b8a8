// Draws the app icons (static/icon-192.png, static/icon-512.png): a green
// tile with two white ticks. Run once with `node icons.mjs`; the PNGs are
// committed.
import { writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function segDist(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}
function icon(size) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const s = size / 100; // drawn on a 100×100 grid
  const ticks = [
    [[22, 52], [36, 66]], [[36, 66], [62, 34]],
    [[42, 62], [46, 66]], [[46, 66], [78, 34]],
  ];
  const w = 5.5;
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      let r = 0x00, g = 0xa8, b = 0x84, a = 255;
      const px = (x + 0.5) / s, py = (y + 0.5) / s;
      let d = Infinity;
      for (const [[ax, ay], [bx, by]] of ticks) d = Math.min(d, segDist(px, py, ax, ay, bx, by));
      const cover = Math.max(0, Math.min(1, (w - d) * s + 0.5));
      r = Math.round(r + (255 - r) * cover);
      g = Math.round(g + (255 - g) * cover);
      b = Math.round(b + (255 - b) * cover);
      const o = y * (size * 4 + 1) + 1 + x * 4;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b; raw[o + 3] = a;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
for (const n of [192, 512]) writeFileSync(new URL(`static/icon-${n}.png`, import.meta.url), icon(n));
