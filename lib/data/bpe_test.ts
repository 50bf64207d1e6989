import assert from "node:assert/strict";
import { join } from "node:path";
import { BYTE_CHARS, countWords, trainBpe } from "./bpe.ts";
import { sha256Hex } from "./hash.ts";
import { DataError } from "./normalize.ts";
import { HfTokenizer } from "./tokenizer.ts";

const CORPUS = [
  "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!\n\n",
  "Café, naïve, coöperate — “quotes” and 12,345 numbers: 3.14159 and 2718.\n",
  "It's what they'd've said, isn't it? We're here, you'll see.   Spaces   and\ttabs.\n",
  "日本語のテキスト、そして emoji 🙂🙂 mixed in.\n",
].map((s) => s.repeat(3));
const TEXTS = [
  ...CORPUS,
  "Unseen words: zebra quixotic xylophone, 99 bottles; ÆØÅ æøå.\r\n",
  "   leading spaces and trailing   ",
  "",
  "a",
  "\n\n\n",
];

/** A Python with `tokenizers` importable (env FINELAB_TOKENIZERS_PYTHON, else python3), or null. */
async function pythonWithTokenizers(): Promise<{ python: string; version: string } | null> {
  const python = Deno.env.get("FINELAB_TOKENIZERS_PYTHON") ?? "python3";
  try {
    const out = await new Deno.Command(python, { args: ["-c", "import tokenizers; print(tokenizers.__version__)"] })
      .output();
    return out.success ? { python, version: new TextDecoder().decode(out.stdout).trim() } : null;
  } catch {
    return null;
  }
}

Deno.test("trainBpe: the same texts and vocab size give the same tokenizer.json, bit for bit", () => {
  const a = trainBpe(CORPUS, 300), b = trainBpe([...CORPUS], 300);
  assert.equal(sha256Hex(a), sha256Hex(b));
  const t = JSON.parse(a);
  assert.equal(Object.keys(t.model.vocab).length, 300);
  assert.equal(t.model.vocab[BYTE_CHARS[32]], 32, "byte b is id b");
  assert.ok(t.model.merges.length >= 300 - 256);
  // the first merge is the most frequent pair: "Ġ" + "t" (" t" starts " the", " they", ...) or similar, count >= 2
  const words = countWords(CORPUS);
  assert.ok(words.size > 20);
  assert.notEqual(sha256Hex(trainBpe(CORPUS, 301)), sha256Hex(a), "another vocab size, another file");
  assert.notEqual(sha256Hex(trainBpe(CORPUS.slice(1), 300)), sha256Hex(a), "other texts, other merges");
});

Deno.test("trainBpe: a vocab too large for the text is one clear DataError", () => {
  assert.throws(
    () => trainBpe(["ab ab"], 5000),
    (e: unknown) => e instanceof DataError && /too little text/.test(e.message),
  );
  assert.throws(() => trainBpe(["ab"], 256), /vocab_size = 256 must be an integer in \[257/);
});

Deno.test("trained BPE: fast encoder equals tokenizers.js, round-trips text, and compresses", () => {
  const json = trainBpe(CORPUS, 320);
  const tok = new HfTokenizer(json, "trained");
  assert.equal(tok.vocabSize, 320);
  for (const t of TEXTS) {
    const ids = tok.encode(t);
    assert.deepEqual(ids, tok.encodeWithLibrary(t), JSON.stringify(t));
    assert.equal(tok.decode(ids), t);
    assert.ok(ids.every((v) => v < 320));
  }
  const bytes = new TextEncoder().encode(CORPUS[0]).length;
  assert.ok(tok.encode(CORPUS[0]).length < bytes * 0.7, "fewer tokens than bytes on the training text");
});

Deno.test("tokenizer.json files that do not parse or are not tokenizers get one clear DataError", () => {
  assert.throws(() => new HfTokenizer("{not json", "bad.json"), /bad.json is not valid JSON/);
  assert.throws(
    () => new HfTokenizer('{"model": {}}', "empty.json"),
    /empty.json is not a Hugging Face tokenizer.json/,
  );
  assert.throws(() => new HfTokenizer("[1,2]", "arr.json"), /arr.json is not a Hugging Face tokenizer.json/);
});

Deno.test("Python tokenizers gives the same ids for our trained tokenizer.json (and its own)", async (t) => {
  const py = await pythonWithTokenizers();
  if (!py) {
    console.log(
      "SKIP: no Python with the `tokenizers` package (set FINELAB_TOKENIZERS_PYTHON, or " +
        "`python3 -m venv v && v/bin/pip install tokenizers`); .ci/run installs one",
    );
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "finelab-tok-" });
  try {
    const ours = trainBpe(CORPUS, 320);
    await Deno.writeTextFile(join(dir, "ours.json"), ours);
    await Deno.writeTextFile(join(dir, "texts.json"), JSON.stringify(TEXTS));
    const script = `
import json, sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
d = sys.argv[1]
texts = json.load(open(d + "/texts.json", encoding="utf-8"))
ours = Tokenizer.from_file(d + "/ours.json")
# a tokenizer trained by Python itself (its own merges), saved for the JS side
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.decoder = decoders.ByteLevel()
t.train_from_iterator(texts[:4], trainers.BpeTrainer(vocab_size=330, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
t.save(d + "/py.json")
json.dump({"ours": [ours.encode(x, add_special_tokens=False).ids for x in texts],
           "py": [t.encode(x, add_special_tokens=False).ids for x in texts]}, open(d + "/ids.json", "w"))
`;
    const out = await new Deno.Command(py.python, { args: ["-c", script, dir] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const ids = JSON.parse(await Deno.readTextFile(join(dir, "ids.json")));
    const mine = new HfTokenizer(ours, "ours.json");
    const theirs = new HfTokenizer(await Deno.readTextFile(join(dir, "py.json")), "py.json");
    await t.step(`our trained BPE (Python tokenizers ${py.version})`, () => {
      TEXTS.forEach((x, i) => assert.deepEqual(Array.from(mine.encode(x)), ids.ours[i], JSON.stringify(x)));
    });
    await t.step("a BPE trained by Python tokenizers, loaded here (fast path and tokenizers.js)", () => {
      TEXTS.forEach((x, i) => {
        assert.deepEqual(Array.from(theirs.encode(x)), ids.py[i], JSON.stringify(x));
        assert.deepEqual(Array.from(theirs.encodeWithLibrary(x)), ids.py[i], JSON.stringify(x));
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
