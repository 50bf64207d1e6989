/**
 * Query results as plain JSON-safe values.
 *
 * DuckDB values are converted so that `JSON.stringify` always works and nothing is silently rounded:
 * - BIGINT/HUGEINT/UBIGINT...: a number when it is a safe integer, else its decimal string;
 * - DECIMAL: a number; DOUBLE/FLOAT: a number, or the strings "NaN", "Infinity", "-Infinity";
 * - TIMESTAMP (stored as UTC) and TIMESTAMPTZ: ISO 8601 strings with millisecond precision
 *   (`2024-01-02T03:04:05.123Z`); out-of-range values such as `infinity` as DuckDB prints them;
 * - DATE: `YYYY-MM-DD`; lists/structs/maps: arrays/objects of converted values; everything else: DuckDB's text.
 *
 * @module
 */
import {
  type DuckDBResultReader,
  DuckDBTypeId,
  type DuckDBValue,
  type DuckDBValueConverter,
  JsonDuckDBValueConverter,
} from "@duckdb/node-api";

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One result column: its (de-duplicated) name and DuckDB type name, e.g. `DOUBLE`, `VARCHAR[]`, `DECIMAL(4,2)`. */
export interface QueryColumn {
  name: string;
  type: string;
}

/** A fully read query result. `rows` are keyed by the column names, in column order. */
export interface QueryResult {
  columns: QueryColumn[];
  rows: Record<string, JsonValue>[];
}

function bigToJson(value: DuckDBValue): JsonValue {
  const b = value as bigint;
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
}

function numberToJson(value: DuckDBValue): JsonValue {
  const n = value as number;
  return Number.isFinite(n) ? n : String(n);
}

/** Micro-, milli-, nano- or plain seconds since the epoch -> ISO string, or DuckDB's text when out of JS range. */
function timestampToJson(value: DuckDBValue, type: { typeId: DuckDBTypeId }): JsonValue {
  const v = value as unknown as Record<string, bigint>;
  let ms: number;
  switch (type.typeId) {
    case DuckDBTypeId.TIMESTAMP_S:
      ms = Number(v.seconds) * 1000;
      break;
    case DuckDBTypeId.TIMESTAMP_MS:
      ms = Number(v.millis);
      break;
    case DuckDBTypeId.TIMESTAMP_NS:
      ms = Number(v.nanos / 1_000_000n);
      break;
    default:
      ms = Number(v.micros / 1000n);
  }
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString();
}

const fallback = JsonDuckDBValueConverter as DuckDBValueConverter<JsonValue>;

const BY_TYPE: Partial<Record<DuckDBTypeId, DuckDBValueConverter<JsonValue>>> = {
  [DuckDBTypeId.BIGINT]: bigToJson,
  [DuckDBTypeId.UBIGINT]: bigToJson,
  [DuckDBTypeId.HUGEINT]: bigToJson,
  [DuckDBTypeId.UHUGEINT]: bigToJson,
  [DuckDBTypeId.BIGNUM]: bigToJson,
  [DuckDBTypeId.FLOAT]: numberToJson,
  [DuckDBTypeId.DOUBLE]: numberToJson,
  [DuckDBTypeId.DECIMAL]: (v) => Number(String(v)),
  [DuckDBTypeId.TIMESTAMP]: timestampToJson,
  [DuckDBTypeId.TIMESTAMP_S]: timestampToJson,
  [DuckDBTypeId.TIMESTAMP_MS]: timestampToJson,
  [DuckDBTypeId.TIMESTAMP_NS]: timestampToJson,
  [DuckDBTypeId.TIMESTAMP_TZ]: timestampToJson,
};

/** Our converter: the JSON converter of @duckdb/node-api with numbers and timestamps made friendlier. */
const converter: DuckDBValueConverter<JsonValue> = (value, type, self) => {
  if (value === null || value === undefined) return null;
  const own = BY_TYPE[type.typeId];
  return own ? own(value, type, self) : fallback(value, type, self);
};

/** Reads a fully materialized result into a {@link QueryResult}. */
export function toQueryResult(reader: DuckDBResultReader): QueryResult {
  const names = reader.deduplicatedColumnNames();
  const types = reader.columnTypes();
  const columns = names.map((name, i) => ({ name, type: types[i].toString() }));
  const rows = reader.convertRows(converter).map((values) => {
    const row: Record<string, JsonValue> = {};
    for (let i = 0; i < names.length; i++) row[names[i]] = values[i] ?? null;
    return row;
  });
  return { columns, rows };
}
