import assert from "node:assert/strict";
import { DataError, decodeText, decodeUtf8, firstInvalidUtf8, normalizeText } from "./normalize.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("normalizeText: CRLF and lone CR become LF, LF stays", () => {
  assert.equal(normalizeText("a\r\nb\rc\nd\r\n\r\ne\r"), "a\nb\nc\nd\n\ne\n");
  assert.equal(normalizeText("no breaks"), "no breaks");
  assert.equal(normalizeText("\r\r\n"), "\n\n");
});

Deno.test("normalizeText: NFD becomes NFC", () => {
  const nfd = "Cafe\u0301 A\u030a Ko\u0308ln \u1100\u1161"; // é, Å, ö and Hangul 가 as jamo
  const out = normalizeText(nfd);
  assert.equal(out, "Caf\u00e9 \u00c5 K\u00f6ln \uac00");
  assert.equal(enc(nfd).length, 24);
  assert.equal(enc(out).length, 18); // é, Å, ö: 3 -> 2 bytes each; 가: 6 -> 3 bytes
  assert.equal(normalizeText("\u00e9"), "\u00e9");
  assert.equal(normalizeText("Cafe\u0301\r\n"), "Caf\u00e9\n");
});

Deno.test("firstInvalidUtf8 finds the first bad sequence and accepts valid text", () => {
  assert.equal(firstInvalidUtf8(enc("ok ünïcödé 🚀")), -1);
  assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xe9, 0x62])), 1); // Latin-1 é
  assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xc0, 0x80])), 1); // overlong NUL
  assert.equal(firstInvalidUtf8(new Uint8Array([0xed, 0xa0, 0x80])), 0); // surrogate D800
  assert.equal(firstInvalidUtf8(new Uint8Array([0xf4, 0x90, 0x80, 0x80])), 0); // > U+10FFFF
  assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0x62, 0xf0, 0x9f])), 2); // truncated emoji
  assert.equal(firstInvalidUtf8(new Uint8Array([0x80])), 0); // stray continuation
});

Deno.test("decodeUtf8 is strict and names file, offset and line", () => {
  assert.equal(decodeUtf8(enc("héllo"), "x.txt"), "héllo");
  const bytes = new Uint8Array([...enc("line one\nline two caf"), 0xe9, ...enc("\n")]);
  assert.throws(
    () => decodeUtf8(bytes, "corpus/x.txt"),
    (e: unknown) =>
      e instanceof DataError &&
      /corpus\/x\.txt is not valid UTF-8: byte 0xe9 at offset 21 \(line 2\)/.test(e.message) &&
      /iconv/.test(e.message),
  );
});

Deno.test("decodeText falls back to windows-1252 only when allowed", () => {
  const latin1 = new Uint8Array([0x43, 0xe6, 0x73, 0x61, 0x72, 0x20, 0x63, 0x61, 0x66, 0xe9]); // "Cæsar café"
  assert.deepEqual(decodeText(latin1, "caesar.txt", true), { text: "Cæsar café", encoding: "windows-1252" });
  assert.throws(() => decodeText(latin1, "other.txt", false), /other\.txt is not valid UTF-8: byte 0xe6 at offset 1/);
  // valid UTF-8 never takes the fallback, even when allowed
  assert.deepEqual(decodeText(enc("Cæsar"), "caesar.txt", true), { text: "Cæsar", encoding: "utf-8" });
});
