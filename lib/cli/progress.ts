/**
 * Progress display for training runs (a live bar: loss, tokens/s, ETA) and for data work (a bar per phase) on a
 * terminal; plain periodic lines when output is piped or in CI (a bar would garble logs).
 *
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import type { HashedRun } from "../runner/plan.ts";
import type { ProgressSink, StepProgress } from "../runner/execute.ts";
import type { ProgressFn } from "../data/build.ts";

function fmtEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Options of {@link progressFactory}. */
export interface ProgressOptions {
  /** Force plain lines (default: plain unless stderr is a terminal). */
  plain?: boolean;
  /** Seconds between plain lines (default: env FINELAB_PROGRESS_EVERY, else 10; first and last step always print). */
  everySeconds?: number;
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
}

/** Returns a factory the runner calls once per run it trains. */
export function progressFactory(opts: ProgressOptions = {}): (run: HashedRun, i: number, n: number) => ProgressSink {
  const tty = !opts.plain && Deno.stderr.isTerminal() && !Deno.env.get("CI");
  const write = opts.write ?? ((l: string) => console.error(l));
  return (run, i, n) => {
    const label = `[${i + 1}/${n}] ${run.run_id}`;
    if (tty) {
      const bar = new cliProgress.SingleBar({
        format: `${label} {bar} {value}/{total} | loss {loss} | {tps} tok/s | eta {eta_h}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        stream: process.stderr,
      }, cliProgress.Presets.shades_classic);
      let started = false;
      return {
        update(p: StepProgress) {
          if (p.loss === null) return; // evaluation: the bar shows training progress
          const payload = { loss: p.loss.toFixed(4), tps: Math.round(p.tokens_per_sec), eta_h: fmtEta(p.eta_s) };
          if (!started) {
            bar.start(p.steps, p.step, payload);
            started = true;
          } else bar.update(p.step, payload);
        },
        done(msg: string) {
          if (started) bar.stop();
          write(`${label}: ${msg}`);
        },
      };
    }
    let last = 0;
    const every = (opts.everySeconds ?? Number(Deno.env.get("FINELAB_PROGRESS_EVERY") ?? 10)) * 1000;
    return {
      update(p: StepProgress) {
        const now = Date.now();
        if (p.phase === "eval" && p.val_loss !== undefined) {
          write(`${label} step ${p.step}/${p.steps} val_loss ${p.val_loss.toFixed(4)}`);
          return;
        }
        if (p.loss === null) return;
        if (p.step === 1 || p.step === p.steps || now - last >= every) {
          last = now;
          write(
            `${label} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${Math.round(p.tokens_per_sec)} tok/s eta ${
              fmtEta(p.eta_s)
            }`,
          );
        }
      },
      done(msg: string) {
        write(`${label}: ${msg}`);
      },
    };
  };
}

/** A progress callback: a bar per phase on a terminal, otherwise a line every 10 s of a long phase (and its end). */
export function progressBar(opts: { plain?: boolean; write?: (l: string) => void } = {}): ProgressFn & {
  stop(): void;
} {
  const tty = !opts.plain && Deno.stderr.isTerminal() && !Deno.env.get("CI");
  const write = opts.write ?? ((l: string) => console.error(l));
  let phase = "", bar: cliProgress.SingleBar | null = null, last = 0, printed = false;
  const fn = ((p: string, done: number, total: number) => {
    if (tty) {
      if (p !== phase) {
        bar?.stop();
        bar = new cliProgress.SingleBar({
          format: `${p} {bar} {percentage}% | {value}/{total} | eta {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, done);
      } else bar!.update(done);
    } else {
      // plain: a line every 10 s of a phase (short phases print nothing), and its end when it printed before
      if (p !== phase) [last, printed] = [Date.now(), false];
      if (Date.now() - last > 10_000 || (printed && done >= total)) {
        write(`${p}: ${done}/${total} (${total ? ((100 * done) / total).toFixed(0) : 100}%)`);
        [last, printed] = [Date.now(), done < total];
      }
    }
    phase = p;
  }) as ProgressFn & { stop(): void };
  fn.stop = () => bar?.stop();
  return fn;
}
