/**
 * A real single-node Slurm for tests: munged, slurmctld and slurmd started from a temp folder (no systemd),
 * on random ports, stopped by pid. Needs root and Debian's `slurm-wlm` + `munge` (`.ci/run` installs them);
 * {@link slurmMissing} says why a cluster cannot start here, so tests skip with that reason.
 *
 * Facts this relies on (verified with Slurm 22.05.8, munge 0.5.15): see /work/shared/research/slurm.md.
 *
 * @module
 */
import { hostname } from "node:os";

/** A running test cluster. */
export interface TestCluster {
  /** The temp folder holding config, keys, state, logs. */
  dir: string;
  /** The environment every Slurm client (and finelab's submitter) needs: SLURM_CONF. */
  env: Record<string, string>;
  /** Node name (this host's short name). */
  node: string;
  /** Partition name (`debug`). */
  partition: string;
  /** Cancels every job, waits for them to end, stops the daemons and removes the folder. */
  stop(): Promise<void>;
}

const TOOLS = ["munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"];
const SBIN = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/** Absolute path of a tool (PATH first, then the sbin folders root's PATH usually has), or null. */
export function findTool(name: string): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...SBIN];
  for (const d of dirs) {
    try {
      if (Deno.statSync(`${d}/${name}`).isFile) return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

/** Why a test cluster cannot start on this machine (null when it can). */
export function slurmMissing(): string | null {
  const missing = TOOLS.filter((t) => !findTool(t));
  if (missing.length) {
    return `Slurm/munge not installed (missing ${missing.join(", ")}; apt-get install slurm-wlm munge)`;
  }
  if (Deno.uid() !== 0) return "the test cluster's daemons need root (SlurmUser=root)";
  return null;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const o = await new Deno.Command(findTool(cmd) ?? cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")}: exit ${o.code}: ${dec.decode(o.stderr).trim()}`);
  return dec.decode(o.stdout);
}

async function readPid(path: string): Promise<number | null> {
  try {
    const n = parseInt((await Deno.readTextFile(path)).trim(), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number, log: () => string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`test cluster: ${what} did not come up in ${timeoutMs / 1000} s\n${log()}`);
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** CPUs the node advertises (default 2). */
  cpus?: number;
  /** Extra slurm.conf lines. */
  extra?: string[];
}

/** Starts munged, slurmctld and slurmd in a temp folder and waits until the node is idle. */
export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-slurm-" });
  await Deno.chmod(dir, 0o755);
  const node = hostname().split(".")[0];
  const base = 20000 + Math.floor(Math.random() * 20000);
  const socket = `${dir}/munge.socket`;
  const pids = { munged: `${dir}/munged.pid`, ctld: `${dir}/slurmctld.pid`, slurmd: `${dir}/slurmd.pid` };
  const logs = () => {
    let s = "";
    for (const f of ["munged.log", "slurmctld.log", "slurmd.log"]) {
      try {
        s += `--- ${f}\n${Deno.readTextFileSync(`${dir}/${f}`).split("\n").slice(-15).join("\n")}\n`;
      } catch { /* not written */ }
    }
    return s;
  };
  const stopDaemons = async () => {
    for (const p of [pids.slurmd, pids.ctld, pids.munged]) {
      const pid = await readPid(p);
      if (pid && alive(pid)) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
        for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
        if (alive(pid)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
      }
    }
  };
  try {
    const key = crypto.getRandomValues(new Uint8Array(1024));
    await Deno.writeFile(`${dir}/munge.key`, key, { mode: 0o400 });
    await Deno.chmod(`${dir}/munge.key`, 0o400);
    await run("munged", [
      "--key-file",
      `${dir}/munge.key`,
      "--socket",
      socket,
      "--pid-file",
      pids.munged,
      "--log-file",
      `${dir}/munged.log`,
      "--seed-file",
      `${dir}/munge.seed`,
      "-f",
    ]);
    for (const d of ["state", "spool"]) await Deno.mkdir(`${dir}/${d}`);
    const conf = [
      "ClusterName=finelabtest",
      `SlurmctldHost=${node}`,
      "AuthType=auth/munge",
      `AuthInfo=socket=${socket}`,
      "CryptoType=crypto/munge",
      "SlurmUser=root",
      "SlurmdUser=root",
      `SlurmctldPort=${base}`,
      `SlurmdPort=${base + 1}`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${pids.ctld}`,
      `SlurmdPidFile=${pids.slurmd}`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_Core",
      "ReturnToService=2",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/none",
      "MpiDefault=none",
      "SchedulerType=sched/backfill",
      "SchedulerParameters=sched_interval=1",
      "MinJobAge=600",
      "KillWait=5",
      `PlugStackConfig=${dir}/plugstack.conf`,
      ...(opts.extra ?? []),
      `NodeName=${node} CPUs=${opts.cpus ?? 2} RealMemory=20000 State=UNKNOWN`,
      "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ];
    await Deno.writeTextFile(`${dir}/plugstack.conf`, "");
    await Deno.writeTextFile(`${dir}/slurm.conf`, conf.join("\n") + "\n");
    const env = { SLURM_CONF: `${dir}/slurm.conf` };
    await run("slurmctld", ["-f", `${dir}/slurm.conf`], env);
    await run("slurmd", ["-f", `${dir}/slurm.conf`], env);
    await waitFor("the node", async () => /idle/.test(await run("sinfo", ["-h", "-o", "%t"], env)), 30_000, logs);
    return {
      dir,
      env,
      node,
      partition: "debug",
      async stop() {
        try {
          await run("scancel", ["--full", `--partition=debug`], env).catch(() => "");
          const end = Date.now() + 20_000;
          while (Date.now() < end && (await run("squeue", ["-h", "-o", "%i"], env).catch(() => "")).trim()) {
            await sleep(300);
          }
        } finally {
          await stopDaemons();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        }
      },
    };
  } catch (e) {
    await stopDaemons();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}
