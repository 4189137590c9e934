// The protocol 9 codec against the byte logs of ../shared/reference/work-queue/ (pure: no sockets).

import { describe, expect, it } from "vitest";
import {
  MessageReader,
  ProtocolError,
  answerChallenge,
  encodePut,
  encodeTask,
  parseMonitorSummary,
  shellQuote,
} from "../../../src/exec/workqueue/protocol.js";

const GREETING =
  "workqueue 9 vm Linux x86_64 8.0.0\n" +
  "info worker-id worker-96bc899fffa51b6507326b39189e8a2f\n" +
  "feature my%20feature\n" +
  "alive\n" +
  "resource workers 1 1 1\n" +
  "resource disk 2000 2000 2000\n" +
  "resource memory 1000 1000 1000\n" +
  "resource gpus 0 0 0\n" +
  "resource cores 2 2 2\n" +
  "resource tag 0\n" +
  "info end_of_resource_update 0\n";

describe("MessageReader", () => {
  it("parses a greeting however the bytes are split", () => {
    const whole = new MessageReader().push(Buffer.from(GREETING));
    const reader = new MessageReader();
    const split = [...Buffer.from(GREETING)].flatMap((byte) =>
      reader.push(Buffer.from([byte])),
    );
    expect(split).toEqual(whole);
    expect(whole[0]).toEqual({
      type: "workqueue",
      protocol: 9,
      hostname: "vm",
      os: "Linux",
      arch: "x86_64",
      version: "8.0.0",
    });
    expect(whole[1]).toEqual({
      type: "info",
      key: "worker-id",
      value: "worker-96bc899fffa51b6507326b39189e8a2f",
    });
    expect(whole[2]).toEqual({ type: "feature", name: "my feature" });
    expect(whole[8]).toEqual({
      type: "resource",
      name: "cores",
      total: 2,
      smallest: 2,
      largest: 2,
    });
  });

  it("reads payloads of exactly their length, with notices interleaved (§2)", () => {
    const reader = new MessageReader();
    const bytes = Buffer.from(
      "result 0 0 15 215866 3\nbuffer-content\ninfo tasks_running 0\nend\n" +
        "available_results\n" +
        "file out-1 6\nout-0\nend\n" +
        "dir out-2 0\nfile out-2/x 0\nmissing out-3 2\r\n",
    );
    const messages = [
      ...reader.push(bytes.subarray(0, 30)),
      ...reader.push(bytes.subarray(30)),
    ];
    expect(messages.map((m) => m.type)).toEqual([
      "result",
      "info",
      "end",
      "available_results",
      "file",
      "end",
      "dir",
      "file",
      "missing",
    ]);
    expect(messages[0]).toMatchObject({
      status: 0,
      exitCode: 0,
      execUsec: 215866,
      taskId: 3,
    });
    expect(String((messages[0] as { stdout: Buffer }).stdout)).toBe(
      "buffer-content\n",
    );
    expect(String((messages[4] as { data: Buffer }).data)).toBe("out-0\n");
    expect(messages[8]).toEqual({ type: "missing", name: "out-3", errno: 2 });
    expect(reader.buffered).toBe(0);
  });

  it("refuses an endless line", () => {
    const reader = new MessageReader();
    expect(() => reader.push(Buffer.alloc(70_000, 0x61))).toThrow(
      ProtocolError,
    );
  });
});

describe("encoders", () => {
  it("frames a task as the worker reads it: cmd bytes without a newline, env bytes with one (§12.1)", () => {
    const bytes = encodeTask({
      id: 2,
      cmd: "cat in.txt; echo é",
      category: "my app",
      cores: 1,
      memory: 99.7,
      disk: 50,
      gpus: 0,
      env: { FOO: "bar baz" },
      inputs: [{ cacheName: "req-2", path: "in dir/in.txt" }],
      outputs: [{ cacheName: "out-2", path: "out" }],
      dirs: ["out"],
    });
    // The dir line after the outfile of the same path: the worker drops an outfile whose path
    // an input (a dir) already has, and the task's reports with it.
    expect(bytes.toString()).toBe(
      "task 2\ncmd 19\ncat in.txt; echo é" +
        "category my_app\ncores 1\ngpus 0\nmemory 99\ndisk 50\n" +
        "env 11\nFOO=bar baz\n" +
        "infile req-2 in%20dir%2Fin.txt 0\noutfile out-2 out 0\ndir out\nend\n",
    );
  });

  it("refuses cache names the worker would drop the connection for", () => {
    expect(() => encodePut("../escape.txt", 2, 0o644)).toThrow(RangeError);
    expect(encodePut("envpack-run-ab", 10, 0o755).toString()).toBe(
      "put envpack-run-ab 10 0755\n",
    );
  });

  it("answers a challenge as the verified log does: SHA1 of the file's bytes, newline included (§3)", () => {
    const password = Buffer.from("s3cret\n");
    expect(
      answerChallenge(
        password,
        "hJ]iqJsWz^uXJPNabfHUfqZlHsZQt]nz_UfbbZNU`cqqwyQpLUsOVSoM`x`^woi",
      ),
    ).toBe("d88ac6bc32041be0346c4a99656c6ac3b6bcdd2b");
    expect(
      answerChallenge(
        Buffer.from("s3cret"),
        "hJ]iqJsWz^uXJPNabfHUfqZlHsZQt]nz_UfbbZNU`cqqwyQpLUsOVSoM`x`^woi",
      ),
    ).not.toBe("d88ac6bc32041be0346c4a99656c6ac3b6bcdd2b");
  });

  it("quotes words for sh", () => {
    expect(["a", "a b", "it's", "$X"].map(shellQuote)).toEqual([
      "a",
      "'a b'",
      "'it'\\''s'",
      "'$X'",
    ]);
  });
});

describe("parseMonitorSummary", () => {
  it("reads a summary whose JSON escapes quotes as \\' (§12.15)", () => {
    const summary = parseMonitorSummary(
      String.raw`{"command":"python3 -c \"b=b\'x\'\"","exit_status":143,"exit_type":"limits","limits_exceeded":{"memory":[50,"MB"]},"wall_time":[5.015029,"s"],"cpu_time":[1.04,"s"],"memory":[310,"MB"],"disk":[1,"MB"]}`,
    );
    expect(summary).toEqual({
      exitStatus: 143,
      exitType: "limits",
      signal: undefined,
      exceeded: ["memory"],
      memory: 310,
      disk: 1,
      cpuSeconds: 1.04,
      wallSeconds: 5.015029,
    });
  });
});
