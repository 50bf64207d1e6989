/**
 * `runs --all` as a table, laid out by DuckDB: the database's finished runs become text lines there (cells
 * formatted as lib/store/format.ts's `table` format does, padded to the widths of the whole listing, in order),
 * joined into one string, so that no JS object is made per stored run. Entries read from the cache (not stored,
 * or not finished; see lib/runner/runs.ts) are formatted here and handed to DuckDB as text, to be sorted in.
 *
 * The result is the text `formatResult(rows, "table")` gives for every row of {@link runsListing}, newest first.
 * Where DuckDB could lay out a cell differently from JS (text other than printable ASCII in a stored run, where
 * widths would be counted differently; a stored run without an attempt count), it returns null and the caller
 * formats the rows in JS.
 *
 * @module
 */
import { mapPool } from "./cache.ts";
import { type ProjectPaths } from "../util/paths.ts";
import { tagsByHash } from "./tags.ts";
import { newestFirst, type RunsRow, runsRow, type Timed, withListing } from "./runs.ts";
import { tableCell } from "../store/format.ts";
import type { JsonValue } from "../store/result.ts";

/** The columns of `runs` and their types, in order. */
export const RUNS_COLUMNS: readonly { name: keyof RunsRow; type: string }[] = [
  { name: "experiment", type: "VARCHAR" },
  { name: "run_id", type: "VARCHAR" },
  { name: "hash", type: "VARCHAR" },
  { name: "status", type: "VARCHAR" },
  { name: "step", type: "INTEGER" },
  { name: "steps", type: "INTEGER" },
  { name: "val_ppl", type: "DOUBLE" },
  { name: "heartbeat", type: "VARCHAR" },
  { name: "attempts", type: "INTEGER" },
  { name: "tags", type: "VARCHAR" },
  { name: "note", type: "VARCHAR" },
];

const MAX_WIDTH = 60;
const RIGHT = RUNS_COLUMNS.map((c) => c.type !== "VARCHAR");

/**
 * A text cell as the `table` format shows it: NULL, control characters escaped, cut at {@link MAX_WIDTH}; `esc`
 * and `cut` false where no value of the column needs it (each costs a pass over 100k strings).
 */
function textSql(x: string, o: { esc: boolean; cut: boolean }): string {
  const e = o.esc
    ? `replace(replace(replace(replace(${x}, chr(13) || chr(10), '\\n'), chr(10), '\\n'), chr(9), '\\t'), ` +
      `chr(13), '\\r')`
    : x;
  return o.cut
    ? `CASE WHEN ${x} IS NULL THEN 'NULL' WHEN length(${e}) > ${MAX_WIDTH} THEN left(${e}, ${MAX_WIDTH - 1}) || '…' ` +
      `ELSE ${e} END`
    : `coalesce(${e}, 'NULL')`;
}

/**
 * A DOUBLE as `formatFloat` writes it: 6 significant digits, plain for 1e-4 <= |x| < 1e15 (no decimals from 1e5),
 * else d.ddddde±x, trailing zeros dropped.
 */
export function floatSql(x: string): string {
  const exp = `regexp_replace(regexp_replace(printf('%.5e', ${x}), '\\.?0+e', 'e'), 'e([+-])0*(\\d)', 'e\\1\\2')`;
  return `CASE WHEN ${x} IS NULL THEN 'NULL' WHEN isnan(${x}) THEN 'NaN' ` +
    `WHEN isinf(${x}) THEN CASE WHEN ${x} > 0 THEN 'Infinity' ELSE '-Infinity' END WHEN ${x} = 0 THEN '0' ` +
    `WHEN abs(${x}) < 1e-4 OR abs(${x}) >= 1e15 THEN ${exp} ` +
    `WHEN abs(${x}) >= 1e5 THEN printf('%.0f', round(${x})) ELSE printf('%.6g', ${x}) END`;
}

/** A whole number as JS prints it (a stored run with another number in such a column is laid out in JS). */
const intSql = (x: string) => `coalesce(CAST(${x} AS BIGINT)::VARCHAR, 'NULL')`;
/** Stored runs whose numbers {@link intSql} could print otherwise than JS. */
const NOT_WHOLE = ["r.steps_done", "r.train_steps", "r.attempts"]
  .map((x) => `(${x} IS NOT NULL AND (${x}::DOUBLE <> trunc(${x}::DOUBLE) OR abs(${x}::DOUBLE) >= 1e15))`)
  .join(" OR ");

/** The text columns of a stored run (alias `r`; its tags in `t.tags`), by column index. */
const STORED_TEXT: Record<number, string> = {
  0: "r.experiment",
  1: "r.run_id",
  3: "r.status",
  9: "t.tags",
  10: "CASE WHEN r.status IN ('failed', 'diverged') THEN r.failure_reason END",
};

/** The cells of a stored run in column order; text as {@link textSql} with `flags` per text column (default plain). */
function storedCells(flags: Record<number, { esc: boolean; cut: boolean }>): string[] {
  const t = (j: number) => textSql(STORED_TEXT[j], flags[j] ?? { esc: false, cut: false });
  return [
    t(0),
    t(1),
    "left(r.hash, 12)",
    t(3),
    intSql("r.steps_done"),
    intSql("r.train_steps"),
    floatSql("r.val_ppl"),
    "'NULL'",
    intSql("r.attempts"),
    t(9),
    t(10),
  ];
}

/** Anything but printable ASCII, tab, CR and LF (where DuckDB and JS could count a width differently). */
const UNUSUAL = `'[^\\x20-\\x7e\\t\\r\\n]'`;

/**
 * Every row of `runs` (only `experiment`'s, when given) as the `table` format prints it, newest first, or null when
 * there is no usable database or a stored run is one DuckDB could lay out differently (see the module doc).
 */
export async function runsTable(paths: ProjectPaths, opts: { experiment?: string } = {}): Promise<string | null> {
  const { experiment } = opts;
  const tags = await tagsByHash(paths);
  const tagsOf = (name: string) => tags.get(name)?.join(",") ?? null;
  return await withListing(paths, experiment, async ({ conn, from, unread }) => {
    // The tags of every run, then the entries read from the cache, go to DuckDB as text.
    await conn.run(`CREATE TEMP TABLE tags (name VARCHAR, tags VARCHAR)`);
    const tagRows = await conn.createAppender("tags", "main", "temp");
    for (const [name, t] of tags) {
      tagRows.appendVarchar(name);
      tagRows.appendVarchar(t.join(","));
      tagRows.endRow();
    }
    tagRows.closeSync();
    const stored = from.replace("WHERE", "LEFT JOIN temp.tags t ON t.name = r.hash WHERE");
    // One pass over the stored runs: can DuckDB lay them out, which text columns need escaping or cutting, and the
    // width of each column where it does not (as the raw text, or NULL).
    const text = Object.entries(STORED_TEXT).map(([j, x]) => ({ j: Number(j), x }));
    const plainCells = storedCells({});
    const check = (await conn.runAndReadAll(
      `SELECT count(*) FILTER (WHERE r.attempts IS NULL OR ${NOT_WHOLE} OR ` +
        `regexp_matches(concat_ws(' ', ${text.map((t) => t.x).join(", ")}), ${UNUSUAL}))::INTEGER, ` +
        text.map(({ x }) =>
          `coalesce(bool_or(regexp_matches(${x}, '[\t\r\n]')), false), ` +
          `coalesce(max(length(${x})) > ${MAX_WIDTH}, false)`
        ).join(", ") + `, ${plainCells.map((c) => `coalesce(max(length(${c})), 0)::INTEGER`).join(", ")} ${stored}`,
    )).getRowsJS()[0];
    if (Number(check[0]) > 0) return null;
    const flags: Record<number, { esc: boolean; cut: boolean }> = {};
    // An escaped text can be longer than the raw one: cut checked again on it.
    text.forEach(({ j }, i) =>
      flags[j] = { esc: check[1 + 2 * i] === true, cut: check[1 + 2 * i] === true || check[2 + 2 * i] === true }
    );
    const storedWidths = check.slice(1 + 2 * text.length).map(Number);
    const cells = storedCells(flags);
    const odd = text.filter(({ j }) => flags[j].esc || flags[j].cut).map(({ j }) => j);
    if (odd.length) {
      const w = (await conn.runAndReadAll(
        `SELECT ${odd.map((j) => `coalesce(max(length(${cells[j]})), 0)::INTEGER`).join(", ")} ${stored}`,
      )).getRowsJS()[0];
      odd.forEach((j, i) => storedWidths[j] = Number(w[i]));
    }
    const read = (await mapPool(unread, 16, (name) => runsRow(paths, name, experiment, tagsOf(name))))
      .filter((r): r is Timed => r !== null).sort(newestFirst);
    await conn.run(
      `CREATE TEMP TABLE read_rows (sort_at DOUBLE, name VARCHAR, ` +
        `${RUNS_COLUMNS.map((_, j) => `c${j} VARCHAR`).join(", ")})`,
    );
    const widths = RUNS_COLUMNS.map((c) => c.name.length);
    const rows = await conn.createAppender("read_rows", "main", "temp");
    const unusual = new RegExp(UNUSUAL.slice(1, -1).replace("]", "…]"));
    let plain = true;
    for (const t of read) {
      if (t.at === null) rows.appendNull();
      else rows.appendDouble(t.at);
      rows.appendVarchar(t.name);
      RUNS_COLUMNS.forEach((c, j) => {
        const cell = tableCell((t.row[c.name] ?? null) as JsonValue, c.type, MAX_WIDTH);
        widths[j] = Math.max(widths[j], cell.width);
        if (unusual.test(cell.text)) plain = false;
        rows.appendVarchar(cell.text);
      });
      rows.endRow();
    }
    rows.closeSync();
    if (!plain) return null;
    // Columns padded to the widest cell of either part (a read entry's width counted in JS, a stored one's in SQL).
    const width = widths.map((w, j) => Math.max(w, storedWidths[j]));
    const c = `(SELECT ${cells.map((x, j) => `${x} AS c${j}`).join(", ")},
        epoch_ms(coalesce(r.finished_at, r.started_at, r.created_at))::DOUBLE AS sort_at, r.hash AS name ${stored}
      UNION ALL SELECT ${RUNS_COLUMNS.map((_, j) => `c${j}`).join(", ")}, sort_at, name FROM temp.read_rows) c`;
    const pad = RUNS_COLUMNS.map((_, j) => `${RIGHT[j] ? "lpad" : "rpad"}(c${j}, ${width[j]}, ' ')`)
      .join(" || ' | ' || ");
    const lines = (await conn.runAndReadAll(
      `SELECT rtrim(' ' || ${pad} || ' ') AS line FROM ${c} ORDER BY sort_at DESC NULLS FIRST, name`,
    )).getColumnsJS()[0] as string[] | undefined;
    const n = lines?.length ?? 0;
    const body = n ? lines!.join("\n") : null;
    const line = (cells: string[]) =>
      cells.map((s, j) => {
        const fill = " ".repeat(width[j] - s.length);
        return `${j ? "|" : ""} ${RIGHT[j] ? fill + s : s + fill} `;
      }).join("").trimEnd();
    const head = [line(RUNS_COLUMNS.map((c) => c.name)), width.map((x) => "-".repeat(x + 2)).join("+")];
    return `${head.join("\n")}\n${body ? `${body}\n` : ""}(${n} row${n === 1 ? "" : "s"})\n`;
  });
}
