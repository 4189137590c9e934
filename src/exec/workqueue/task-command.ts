// What one task is on a worker: the shell line the worker runs (the app's runner inside its
// bundle, wrapped in resource_monitor), the files it reads and writes, and how the worker's report
// and those files become a TaskResult. Pure: the manager does the I/O.

import {
  TASK_PROTOCOL,
  type Resources,
  type RuntimeConnect,
  type TaskReply,
  type TaskRequest,
  type TaskSpec,
  type TaskUsage,
} from "../../core/light.js";
import {
  lostOutcome,
  overResourcesOutcome,
  processOutcome,
  signalName,
  stderrTail,
  type Outcome,
} from "../outcome.js";
import {
  parseMonitorSummary,
  shellQuote,
  type MonitorSummary,
} from "./protocol.js";

/** A file the manager sends once per worker connection, under a content-addressed cache name. */
export interface ShippedFile {
  cacheName: string;
  /** On the manager's host. */
  path: string;
  size: number;
  mode: number;
}

/** How tasks are measured and limited. */
export type MonitorChoice =
  /** The manager's resource_monitor, shipped to the worker. */
  | { kind: "shipped"; file: ShippedFile }
  /** The worker's own resource_monitor when it has one (else unmonitored, said in `out/`). */
  | { kind: "worker" }
  | { kind: "off" };

/** The directory every task writes its reports into; fetched back as one output. */
export const OUT_DIR = "out";
/** Inside OUT_DIR. */
export const OUT = {
  result: "result.json",
  stderr: "stderr",
  summary: "monitor.summary",
  unmonitored: "unmonitored",
  missing: "missing",
  /** The signal number + 128 resource_monitor itself ended by (not the program it ran). */
  monitorDied: "monitor-died",
} as const;

/** The files a task needs shipped (each once per connection), by role. */
export interface TaskFiles {
  envpackRun?: ShippedFile | undefined;
  /** The bundle file envpack-run is given: a single-blob bundle, or a layered bundle's index. */
  bundle?: ShippedFile | undefined;
  /** A layered bundle's layers, which envpack-run finds beside its index in the cache. */
  layers?: ShippedFile[] | undefined;
  runner?: ShippedFile | undefined;
}

/** A task as the worker runs it. */
export interface WorkerTask {
  cmd: string;
  /** The request a runner reads on stdin (apps only); sent as a per-task file `task.json`. */
  request?: Buffer | undefined;
  env: Record<string, string>;
  /** Empty directories the worker makes in the sandbox before the task starts (`dir` lines). */
  dirs: string[];
}

const INPUT = "task.json";
/** The FIFO a task's watcher waits on (in the sandbox, not in out/: a get would block on it). */
const ALIVE = ".envpack-alive";
/** The FIFO whose end of file says the monitored program has exited (see workerTask). */
const EXITED = ".envpack-exited";

/** The cache file whose presence tells task `wqId` to end itself (see workerTask). */
export function cancelName(wqId: number): string {
  return `cancel-${wqId}`;
}

/** The name a task's request is linked as in its sandbox. */
export const REQUEST_PATH = INPUT;

/**
 * The shell line for a task. Cached files are read where the worker keeps them (`../cache/NAME`
 * from the sandbox), so a bundle is neither linked nor counted in each sandbox's disk. stderr and
 * the reports go to `out/`; stdout stays the worker's (a command's output). The line ends with
 * `exit $?` so the shell waits for the program and reports a signal as 128+N (the worker itself
 * reports a signal as a plain exit code, §12.7); resource_monitor tells the two apart exactly.
 */
export function workerTask(
  task: TaskSpec,
  wqId: number,
  label: Resources,
  files: TaskFiles,
  monitor: MonitorChoice,
  /** An app task: instead of running it once, start a warm runtime that connects here. */
  connect?: RuntimeConnect,
): WorkerTask {
  const cached = (f: ShippedFile) => `../cache/${f.cacheName}`;
  // out/ is made by the worker (a `dir` line): no mkdir process per task.
  const lines = [
    // The worker leaves its connection to the manager open in its tasks (fd 3 here): closed, so
    // that a worker killed with SIGKILL is seen gone at once, not when its orphaned tasks end.
    `for f in 3 4 5 6 7 8 9; do [ -S /proc/$$/fd/$f ] && eval "exec $f>&-"; done`,
    `exec 2>${OUT_DIR}/${OUT.stderr}`,
  ];
  const env: Record<string, string> =
    connect === undefined
      ? { ...task.env }
      : // glibc's mmap threshold grows after a large free, after which freed buffers stay resident
        // in the heap: a warm runtime's rest would then carry earlier tasks' memory into later
        // tasks' peaks (label creep). A fixed threshold returns large blocks on free.
        { MALLOC_MMAP_THRESHOLD_: "131072", ...task.env };
  let program: string[];
  let request: TaskRequest | RuntimeConnect | undefined;
  const payload = task.payload;
  if (payload.kind === "command") {
    program =
      "argv" in payload ? payload.argv : ["/bin/sh", "-c", payload.shell];
  } else {
    const interpreter = payload.kind === "module" ? "node" : "python3";
    const runner = files.runner;
    if (runner === undefined)
      throw new Error("an app task needs its runner shipped");
    const mode = connect === undefined ? "--once" : "--connect";
    program =
      payload.kind !== "module"
        ? ["python3", "-I", "-B", cached(runner), mode]
        : // --expose-gc: a warm runner collects a task's garbage before the next task is measured.
          ["node", ...(connect ? ["--expose-gc"] : []), cached(runner), mode];
    request = connect ?? taskRequest(task, ".");
    if (task.bundle !== undefined) {
      if (files.bundle === undefined || files.envpackRun === undefined)
        throw new Error(
          "a bundled task needs its bundle and envpack-run shipped",
        );
      // envpack-run unpacks the bundle once per connection: under the worker's workspace, which
      // the worker deletes when it leaves (or loses) the connection.
      lines.push(
        `ENVPACK_WORKER_CACHE="$WORKER_TMPDIR/envpack"; export ENVPACK_WORKER_CACHE`,
      );
      program = [
        "/bin/sh",
        cached(files.envpackRun),
        cached(files.bundle),
        "--",
        ...program,
      ];
    } else {
      lines.push(
        `command -v ${interpreter} >/dev/null 2>&1 || { echo ${interpreter} >${OUT_DIR}/${OUT.missing}; exit 127; }`,
      );
    }
  }
  lines.push(`set -- ${program.map(shellQuote).join(" ")}`);
  const limits = [
    "-L",
    `memory: ${Math.max(1, Math.floor(label.memory))}`,
    "-L",
    `disk: ${Math.max(1, Math.floor(label.disk))}`,
  ];
  // -i 1: the default 5 s interval misses the peaks of short tasks (§14).
  const monitorArgs = [
    "--no-pprint",
    "-i",
    "1",
    "-O",
    `${OUT_DIR}/monitor`,
    ...limits,
    "--",
  ]
    .map(shellQuote)
    .join(" ");
  const io =
    request === undefined ? "" : ` <${INPUT} 3>${OUT_DIR}/${OUT.result}`;
  // The worker makes each task a process group leader from its side of the fork, which loses the
  // race when the task has already exec'd sh: its kill then misses, and it waits (frozen) for
  // the task to end. A task that finds itself no leader ends itself when the manager, before its
  // kill, puts the file cancel-ID in the cache (§8, verified on coop-computing-tools 9.9). A
  // leader needs none of this: the worker's kill reaches its whole group.
  // The program's group too, when it leads one (see below): what it started goes with it.
  const canceller =
    `[ "$g" = $$ ] || { (while [ ! -e ../cache/${cancelName(wqId)} ] && kill -0 $p 2>/dev/null; ` +
    `do sleep 1; done; [ -e ../cache/${cancelName(wqId)} ] && kill -9 -$p $p 2>/dev/null) 8>&- 9<&- & }`;
  lines.push(`g=$$; read -r _ _ _ _ g _ </proc/$$/stat`);
  if (monitor.kind === "off") {
    // A leader runs the program in the foreground: the shell reports a signal as 128+N (the
    // worker alone would report it as a plain exit code, §12.7).
    lines.push(
      `if [ "$g" = $$ ]; then "$@"${io}; exit $?; fi`,
      // No leader: the program leads a process group of its own (setsid, where the worker has
      // it), which the canceller kills whole; in this shell's group its children would outlive it.
      `! command -v setsid >/dev/null 2>&1 || set -- setsid "$@"`,
      `"$@"${io} & p=$!`,
      canceller,
      `wait $p; exit $?`,
    );
  } else {
    // resource_monitor runs the program in a process group of its own, which the worker's kill
    // (SIGKILL to the task's group) misses: a watcher in that group kills it once this shell is
    // gone (killed, or done). It waits for end-of-file on a FIFO only this shell writes to.
    //
    // resource_monitor pauses 200 ms after its program exits unless a signal cuts the pause
    // short (a do-while usleep in rmonitor_final_cleanup, resource_monitor.c of cctools
    // 065268945; seen with strace): that pause, not the task, bounded monitored tasks to ~4/s
    // per core. The program holds the write end of a second FIFO; a poker outside the monitor
    // (so neither measured nor waited for by it) sees its end of file when the program exits and
    // sends the monitor SIGCHLD (its handler only reaps its own child) until the monitor is gone.
    // resource_monitor makes its child a group leader on both sides of the fork (no race). The
    // inner shell reads nothing byte by byte: under the monitor's helper library every read is
    // a message to the monitor.
    //
    // The monitor runs until every process it tracks has ended. It learns of the watcher from a
    // message the watcher's fork sends, and when the program dies at once (kill -SEGV $$) that
    // message can arrive after the monitor has untracked everything on its child's exit: the
    // watcher is tracked anew, and the monitor, this shell and the watcher wait on each other
    // (about 1 run in 15, seen with ps and strace). A monitor still alive after the pokes with
    // no child of its own waits for nothing but such leftovers: a line in the watcher's FIFO
    // (opened read-write, so it cannot block) makes the watcher end its group, as it would have
    // when this shell exits.
    const inner = `/bin/sh -c '(read _ <&9; kill -9 0) & exec "$@" 9<&- 7<>${EXITED}' envpack-task`;
    lines.push(
      `mkfifo ${ALIVE} ${EXITED} && exec 8<>${ALIVE} 9<${ALIVE} || exit 70`,
      monitor.kind === "shipped"
        ? `set -- ${cached(monitor.file)} ${monitorArgs} ${inner} "$@"; m=1`
        : `m=; if command -v resource_monitor >/dev/null 2>&1; then set -- resource_monitor ${monitorArgs} ${inner} "$@"; m=1; else : >${OUT_DIR}/${OUT.unmonitored}; fi`,
      `"$@"${io} 8>&- & p=$!`,
      // At most 40 pokes 5 ms apart: a program that closed fd 7 early costs nothing more. The
      // monitor is then looked at for up to 5 s, every 0.1 s while it lives: on a loaded machine
      // it can reach the wait for its leftovers well after the pokes (a hang seen once in a full
      // test run beside other suites).
      `[ -z "$m" ] || { (exec 8>&- 9<&- 2>/dev/null; read _ <${EXITED}; poke() { n=0; while [ $n -lt 40 ] && kill -CHLD $p; do n=$((n+1)); sleep 0.005; done; }; poke; ` +
        `c=/proc/$p/task/$p/children; i=0; while [ $i -lt 50 ] && kill -0 $p; do [ -r $c ] && [ -z "$(cat $c)" ] && { echo 1<>${ALIVE}; poke; }; i=$((i+1)); sleep 0.1; done) & }`,
      canceller,
      // Opening the FIFO once more frees a poker whose program ended before it looked. The
      // monitor ends by a signal only when it fails (the program's own signal is in its
      // summary): its SIGCHLD handler calls malloc, and a program that dies at once can meet
      // the main loop inside malloc (glibc aborts it, about 1 task in 1000).
      `wait $p; s=$?; [ -z "$m" ] || [ $s -le 128 ] || echo $s >${OUT_DIR}/${OUT.monitorDied}`,
      `exec 6<>${EXITED} 6>&- 8>&- 9<&-; exit $s`,
    );
  }
  return {
    cmd: lines.join("\n"),
    request:
      request === undefined ? undefined : Buffer.from(JSON.stringify(request)),
    env,
    dirs: [OUT_DIR],
  };
}

/** The request a runner reads for an app task (module or Python), run in `cwd`. */
export function taskRequest(task: TaskSpec, cwd: string): TaskRequest {
  const payload = task.payload;
  if (payload.kind === "command")
    throw new Error("a command task has no runner request");
  const common = {
    type: "run",
    protocol: TASK_PROTOCOL,
    id: task.id,
    args: payload.args,
    cwd,
  } as const;
  return payload.kind === "module"
    ? { ...common, module: payload.module, exportName: payload.exportName }
    : { ...common, file: payload.file, function: payload.functionName };
}

/** What came back for a task: the worker's `result` and the files of its `out/` directory. */
export interface WorkerReport {
  /** work_queue_result_t: 0 the process ended (however), 40 forsaken, others by the worker. */
  status: number;
  exitCode: number;
  execUsec: number;
  stdout: Buffer;
  /** By name inside out/; absent when the task wrote nothing there (or was killed early). */
  files: Map<string, Buffer>;
}

/** Attempts a task gets when its resource_monitor dies under it (see decodeReport). */
const MONITOR_ATTEMPTS = 3;

/** The worker forsook the task (it could not run it there): as a lost worker, it runs elsewhere. */
const FORSAKEN = 40;

/** A task's outcome from its report; `unmonitored` when no resource_monitor measured it. */
export function decodeReport(
  task: TaskSpec,
  report: WorkerReport,
): { outcome: Outcome; unmonitored: boolean } {
  const text = (name: string) => report.files.get(name)?.toString("utf8");
  const summaryText = text(OUT.summary);
  let summary: MonitorSummary | undefined;
  if (summaryText !== undefined && summaryText.trim() !== "") {
    try {
      summary = parseMonitorSummary(summaryText);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  const unmonitored = report.files.has(OUT.unmonitored);
  const tail = stderrTail(
    (text(OUT.stderr) ?? "")
      .split("\n")
      // resource_monitor's own notices are not the task's.
      .filter((line) => !/\bresource_monitor\[\d+\]/.test(line))
      .join("\n"),
  );
  const reply = parseReply(text(OUT.result));
  const usage = usageOf(report, summary, reply);
  const decoded = (outcome: Outcome) => ({ outcome, unmonitored });
  /** A task that did not end as its program would have (exit code 127 for a missing tool). */
  const failed = (name: string, message: string, exitCode?: number) =>
    decoded({
      ok: false,
      reason: "exit",
      ...(exitCode === undefined ? {} : { exitCode }),
      error: { name, message },
      ...(tail === "" ? {} : { stderrTail: tail }),
      usage,
    });
  if (report.status === FORSAKEN)
    return decoded(lostOutcome("the worker forsook the task", usage));
  // A monitor that failed under the task says nothing of the program (killed with it): as a
  // lost worker, the task runs again. A summary written before the failure still tells. From
  // the third attempt on it fails instead (every run again counts one): a program that kills
  // its monitor would otherwise run forever.
  const monitorDied = Number(text(OUT.monitorDied));
  if (monitorDied > 128 && summary === undefined) {
    const message = `resource_monitor died of ${signalName(monitorDied - 128)} on the worker before it wrote its summary`;
    return task.attempt < MONITOR_ATTEMPTS - 1
      ? decoded(lostOutcome(message, usage))
      : failed(
          "MonitorFailed",
          `${message}, attempt ${task.attempt + 1} of ${MONITOR_ATTEMPTS}`,
        );
  }
  if (report.status !== 0)
    return failed(
      "WorkerError",
      `work_queue_worker ended the task with result status ${report.status}`,
    );
  if (summary !== undefined && summary.exceeded.length > 0)
    return decoded(
      overResourcesOutcome(
        summary.exceeded.includes("memory")
          ? "memory"
          : summary.exceeded.includes("disk")
            ? "disk"
            : undefined,
        usage,
        summary.exceeded.join(", "),
      ),
    );
  const missing = text(OUT.missing)?.trim();
  if (missing !== undefined)
    return failed(
      "ToolMissing",
      `${missing} is not installed on the worker: ${task.payload.kind} apps without pack: true run the worker's own ${missing}`,
      127,
    );
  // How the program ended: resource_monitor knows a signal from an exit; the shell says 128+N.
  let exitCode: number | undefined;
  let signal: string | undefined;
  if (summary?.exitType === "signal" && summary.signal !== undefined)
    signal = signalName(summary.signal);
  else if (summary?.exitStatus !== undefined) exitCode = summary.exitStatus;
  else if (report.exitCode > 128 && report.exitCode < 128 + 65)
    signal = signalName(report.exitCode - 128);
  else exitCode = report.exitCode;
  return decoded(
    processOutcome({
      kind: task.payload.kind,
      exitCode,
      signal,
      usage,
      stdout: report.stdout.toString("utf8"),
      reply,
      stderrTail: tail,
    }),
  );
}

function parseReply(text: string | undefined): TaskReply | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  try {
    const reply = JSON.parse(text) as TaskReply;
    return reply?.type === "result" ? reply : undefined;
  } catch (error) {
    // A runner killed while writing leaves a truncated reply: the process's end says what happened.
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

function usageOf(
  report: WorkerReport,
  summary: MonitorSummary | undefined,
  reply: TaskReply | undefined,
): TaskUsage {
  const wallMs =
    summary !== undefined && summary.wallSeconds > 0
      ? summary.wallSeconds * 1000
      : report.execUsec / 1000;
  const cpuMs = Math.max((summary?.cpuSeconds ?? 0) * 1000, reply?.cpuMs ?? 0);
  return {
    peakMemory: Math.max(summary?.memory ?? 0, reply?.rssMB ?? 0),
    disk: summary?.disk ?? 0,
    cpuMs,
    wallMs,
    cores: wallMs > 0 ? cpuMs / wallMs : 0,
  };
}
