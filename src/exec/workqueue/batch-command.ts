// What a batch of command tasks is on a worker: one Work Queue task whose shell runs them one
// after another, each in its own directory with its own stdout, stderr, exit code and (monitored)
// resource_monitor, reporting each as it ends in streams the worker sends while they grow; and
// how those streams become each task's outcome. Pure: the manager does the I/O.

import type { Resources, TaskSpec } from "../../core/index.js";
import type { Outcome } from "../outcome.js";
import { shellQuote } from "./protocol.js";
import {
  OUT,
  OUT_DIR,
  cancelName,
  decodeReport,
  type MonitorChoice,
} from "./task-command.js";

/** The streams of a batch, inside OUT_DIR: stdout, stderr and resource_monitor summaries. */
export const STREAM = { stdout: "s", stderr: "e", summary: "m" } as const;

/** The cache file whose presence tells batch `wqId` to skip its member `index`. */
export function skipName(wqId: number, index: number): string {
  return `${cancelName(wqId)}-${index}`;
}

/** A batch as the worker runs it: the shell line, its directories and its (watched) outputs. */
export interface BatchTask {
  cmd: string;
  dirs: string[];
  outputs: Array<{ cacheName: string; path: string; watch?: boolean }>;
}

/**
 * The shell line of a batch: member `i` (from 1) of `tasks` runs in `b<i>/` with its stdout and
 * stderr appended to the streams, then a marker line `\n<nonce> <i> <exit> <start> <end>` (start
 * and end from /proc/uptime, 10 ms steps) goes to every stream — stdout's last, and the worker
 * sends watched files in the order declared, stdout's first: a marker seen there means the
 * other streams of that reply hold the member's whole record. The nonce (random per batch)
 * keeps a task's own output from passing for a marker. A member whose skip file is in the cache
 * when its turn comes does not run. Each member is its own process (a fork); with a monitor
 * each runs under its own resource_monitor, limited by the batch's label.
 */
export function batchTask(options: {
  wqId: number;
  tasks: TaskSpec[];
  label: Resources;
  monitor: Exclude<MonitorChoice, { kind: "worker" }>;
  nonce: string;
  outName: string;
}): BatchTask {
  const { wqId, tasks, label, monitor, nonce } = options;
  const monitored = monitor.kind === "shipped";
  const streams = monitored
    ? [STREAM.stdout, STREAM.stderr, STREAM.summary]
    : [STREAM.stdout, STREAM.stderr];
  const mark = (stream: string, before = "") =>
    `printf '${before}\\n%s %s %s %s %s\\n' ${before === "" ? "" : '"$j" '}$N $i $x $t0 $t1 >>"$o/${stream}"`;
  const lines = [
    // As for a single task (task-command.ts): the worker's connection is not the tasks' to keep.
    `for f in 3 4 5 6 7 8 9; do [ -S /proc/$$/fd/$f ] && eval "exec $f>&-"; done`,
    `exec 2>${OUT_DIR}/${OUT.stderr}`,
    `w=$PWD; o=$PWD/${OUT_DIR}; N=${nonce}; c=`,
    // A shell the worker's kill misses (no group leader, see task-command.ts) ends itself and
    // the member running when the manager puts cancel-ID in the cache. That member leads a
    // process group of its own (setsid, where the worker has it; L) so that the processes it
    // started go with it: in this shell's group they would outlive the cancel.
    `g=$$; L=; read -r _ _ _ _ g _ </proc/$$/stat`,
    `[ "$g" = $$ ] || { c=1; ! command -v setsid >/dev/null 2>&1 || L=1; (while [ ! -e ../cache/${cancelName(wqId)} ] && kill -0 $$ 2>/dev/null; do sleep 1; done; ` +
      `[ -e ../cache/${cancelName(wqId)} ] && { read -r q <.p; kill -9 -$q $q $$ 2>/dev/null; }) & }`,
  ];
  let run: string;
  if (!monitored) {
    // As a single task runs it (task-command.ts): a builtin in the subshell, a program exec'd in
    // its place; never this shell's function.
    run = `(unset -f r; cd b$i && \${L:+exec setsid} "$@") >>"$o/s" 2>>"$o/e" & p=$!`;
  } else {
    const limits = [
      "-L",
      `memory: ${Math.max(1, Math.floor(label.memory))}`,
      "-L",
      `disk: ${Math.max(1, Math.floor(label.disk))}`,
    ]
      .map(shellQuote)
      .join(" ");
    // The same FIFOs as a single monitored task (task-command.ts), made once per batch: a
    // watcher in each monitor's group kills it if this shell is gone; a poker ends the monitor's
    // 200 ms pause after its program exits.
    lines.push(
      `mkfifo .envpack-alive .envpack-exited && exec 8<>.envpack-alive 9<.envpack-alive || exit 70`,
      `a=$w/.envpack-exited`,
    );
    run =
      `(cd b$i && exec "$w/../cache/${monitor.file.cacheName}" --no-pprint -i 1 -O m ${limits} -- ` +
      `/bin/sh -c '(read _ <&9; kill -9 0) & exec "$@" 9<&- 7<>'"$a" envpack-task "$@") >>"$o/s" 2>>"$o/e" 8>&- & p=$!\n` +
      `  (exec 8>&- 9<&- 2>/dev/null; read _ <"$a"; n=0; while [ $n -lt 40 ] && kill -CHLD $p; do n=$((n+1)); sleep 0.005; done) &`;
  }
  lines.push(
    `r() {`,
    `  i=$1; shift`,
    `  [ -e ../cache/${cancelName(wqId)}-$i ] && return 0`,
    `  read -r t0 _ </proc/uptime`,
    `  ${run}`,
    `  [ -z "$c" ] || echo $p >.p`,
    `  wait $p; x=$?${monitored ? `; exec 6<>"$a" 6>&-` : ""}`,
    `  read -r t1 _ </proc/uptime`,
    ...(monitored
      ? [`  j=; read -r j <b$i/m.summary`, `  ${mark(STREAM.summary, "%s")}`]
      : []),
    `  ${mark(STREAM.stderr)}`,
    `  ${mark(STREAM.stdout)}`,
    // A member that ran half a second or more wakes the worker (its SIGCHLD handler only sets a
    // flag), so its result streams now rather than at the worker's next turn (at most 5 s away).
    `  [ $((\${t1%.*}\${t1#*.} - \${t0%.*}\${t0#*.})) -lt 50 ] || kill -CHLD $PPID 2>/dev/null`,
    `}`,
  );
  tasks.forEach((task, i) => {
    const payload = task.payload;
    if (payload.kind !== "command")
      throw new Error("a batch runs command tasks only");
    const program =
      "argv" in payload ? payload.argv : ["/bin/sh", "-c", payload.shell];
    lines.push(`r ${i + 1} ${program.map(shellQuote).join(" ")}`);
  });
  lines.push("exit 0");
  return {
    cmd: lines.join("\n"),
    dirs: [OUT_DIR, ...tasks.map((_, i) => `b${i + 1}`)],
    outputs: [
      // The directory goes first: the streams then move with it (their own moves find nothing).
      { cacheName: options.outName, path: OUT_DIR },
      ...streams.map((stream) => ({
        cacheName: `${options.outName}-${stream}`,
        path: `${OUT_DIR}/${stream}`,
        watch: true,
      })),
    ],
  };
}

/** One member's part of a stream, complete up to its marker. */
export interface StreamRecord {
  content: Buffer;
  exitCode: number;
  /** Seconds since boot (/proc/uptime) when it started and ended. */
  start: number;
  end: number;
}

/** The records complete in a stream's bytes so far, by member index. */
export function streamRecords(
  data: Buffer,
  nonce: string,
): Map<number, StreamRecord> {
  const marker = Buffer.from(`\n${nonce} `);
  const records = new Map<number, StreamRecord>();
  let from = 0;
  for (;;) {
    const at = data.indexOf(marker, from);
    if (at < 0) break;
    const eol = data.indexOf(0x0a, at + marker.length);
    if (eol < 0) break;
    const [index, exitCode, start, end] = data
      .subarray(at + marker.length, eol)
      .toString("latin1")
      .split(" ")
      .map(Number);
    if (index !== undefined && Number.isInteger(index))
      records.set(index, {
        content: data.subarray(from, at),
        exitCode: exitCode ?? NaN,
        start: start ?? 0,
        end: end ?? 0,
      });
    from = eol + 1;
  }
  return records;
}

/** The outcome of member `index` from the records of its batch's streams, once stdout's has it. */
export function memberOutcome(
  task: TaskSpec,
  index: number,
  streams: {
    stdout: Map<number, StreamRecord>;
    stderr: Map<number, StreamRecord>;
    summary?: Map<number, StreamRecord> | undefined;
  },
): Outcome | undefined {
  const out = streams.stdout.get(index);
  if (out === undefined) return undefined;
  const files = new Map<string, Buffer>();
  const stderr = streams.stderr.get(index);
  if (stderr !== undefined) files.set(OUT.stderr, stderr.content);
  const summary = streams.summary?.get(index);
  if (summary !== undefined) files.set(OUT.summary, summary.content);
  return decodeReport(task, {
    status: 0,
    exitCode: out.exitCode,
    execUsec: Math.max(0, out.end - out.start) * 1e6,
    stdout: out.content,
    files,
  }).outcome;
}
