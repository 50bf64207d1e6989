/**
 * Entry point of `deno task serve`, `deno task report` and `deno task diff`.
 *
 * @module
 */
import { Command, InvalidArgumentError } from "commander";
import { resolve } from "node:path";
import { projectPaths } from "../util/paths.ts";
import { serve } from "./server.ts";
import { exportReport } from "./export.ts";
import { compare, CompareError, formatComparison } from "./compare.ts";
import { StoreLockedError } from "../store/mod.ts";

const LOCAL = new Set(["127.0.0.1", "localhost", "::1"]);

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("a port is an integer 0-65535");
  return n;
}

/** Builds the command line (exported for tests). */
export function program(): Command {
  const paths = projectPaths();
  const src = { paths };
  const cmd = new Command("finelab").exitOverride();
  cmd.command("serve")
    .description("the results dashboard in the browser (read-only)")
    .option("--port <n>", "port (0: any free one)", port, 8700)
    .option(
      "--host <addr>",
      "interface to listen on; anything but 127.0.0.1/localhost exposes the results",
      "127.0.0.1",
    )
    .action(async (o: { port: number; host: string }) => {
      if (!LOCAL.has(o.host)) {
        console.error(`warning: listening on ${o.host}: anyone who can reach this machine can read the results`);
      }
      await serve(src, {
        port: o.port,
        hostname: o.host,
        onListen: ({ port }) => {
          const host = o.host.includes(":") ? `[${o.host}]` : o.host;
          console.log(`finelab dashboard: http://${host}:${port}/  (results: ${paths.results}; Ctrl-C stops)`);
        },
      }).finished; // until the server stops (Ctrl-C ends the process)
    });
  cmd.command("report")
    .description("export the dashboard as a static folder (open index.html from disk or any static host)")
    .option("--out <dir>", "output folder", resolve(paths.results, "report"))
    .action(async (o: { out: string }) => {
      const t0 = performance.now();
      const s = await exportReport(src, o.out);
      console.log(
        `wrote ${s.pages} pages (${s.experiments} experiments, ${s.runs} runs) to ${s.dir}/index.html ` +
          `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    });
  cmd.command("diff")
    .description("compare runs or variants: differing config keys and final metrics")
    .argument("<refs...>", "run hash (or 6+ digit prefix), <experiment>/<run_id> or <experiment>/<variant>")
    .action(async (refs: string[]) => console.log(formatComparison(await compare(src, refs))));
  return cmd;
}

/** Runs `serve|report|diff <args>`; returns the exit code (what lib/cli/launch.ts runs for those tasks). */
export async function main(args: string[]): Promise<number> {
  try {
    await program().parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") return 0;
    if (code?.startsWith("commander.")) return 2;
    if (e instanceof CompareError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof Deno.errors.AddrInUse) {
      console.error(
        `error: that port is in use (${e.message}); pick another with --port, or --port 0 for any free one`,
      );
      return 2;
    }
    if (e instanceof StoreLockedError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
