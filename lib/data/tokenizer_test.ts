import assert from "node:assert/strict";
import { ByteTokenizer, DOCUMENT_SEPARATOR, getTokenizer } from "./tokenizer.ts";

const tok = new ByteTokenizer();

Deno.test("byte tokenizer round-trips multilingual text, emoji and both Unicode forms", () => {
  const samples = [
    "",
    "plain ASCII\nwith lines",
    "Grüße aus Köln — naïve café",
    "日本語のテキスト、中文文本、한국어",
    "Ελληνικά и русский текст, עברית, العربية",
    "emoji: 👩🏽‍🔬🚀 and flags 🇯🇵",
    "e\u0301", // NFD é stays NFD through the tokenizer (normalisation is a separate step)
    "\u00e9", // NFC é
  ];
  for (const s of samples) {
    const ids = tok.encode(s);
    assert.ok(ids instanceof Uint8Array);
    assert.equal(ids.length, new TextEncoder().encode(s).length);
    assert.equal(tok.decode(ids), s);
    assert.equal(tok.decode(Array.from(ids)), s); // plain number arrays decode too
  }
  assert.deepEqual([...tok.encode("é")], [0xc3, 0xa9]);
  assert.deepEqual([...tok.encode("e\u0301")], [0x65, 0xcc, 0x81]);
  assert.deepEqual([...tok.encode("🚀")], [0xf0, 0x9f, 0x9a, 0x80]);
});

Deno.test("encoding documents one by one equals encoding their joined text", () => {
  const docs = ["first 📘", "zweite Seite", "третий"];
  const joined = tok.encode(docs.join(DOCUMENT_SEPARATOR));
  const parts: number[] = [];
  docs.forEach((d, i) => {
    if (i > 0) parts.push(...tok.encode(DOCUMENT_SEPARATOR));
    parts.push(...tok.encode(d));
  });
  assert.deepEqual([...joined], parts);
  assert.deepEqual([...tok.encode(DOCUMENT_SEPARATOR)], [10, 10]);
});

Deno.test("decode rejects ids outside 0..255 and shows cut characters as U+FFFD", () => {
  assert.throws(() => tok.decode([65, 256]), /token id 256 at position 1/);
  assert.throws(() => tok.decode([1.5]), /token id 1.5/);
  assert.throws(() => tok.decode([-1]), /token id -1/);
  const rocket = tok.encode("a🚀");
  assert.equal(tok.decode(rocket.subarray(0, 3)), "a\ufffd");
});

Deno.test("getTokenizer knows bytes and rejects others", () => {
  const t = getTokenizer("bytes");
  assert.equal(t.vocabSize, 256);
  assert.equal(t.name, "bytes");
  assert.throws(() => getTokenizer("bpe"), /tokenizer "bpe" needs a tokenizer.json; only "bytes" is built in/);
});
