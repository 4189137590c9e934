// Bundle writers sharing one packing worker (a build's layers) give the bytes each gives alone,
// fail alone, and leave nothing behind; a source whose size is not what it reads is refused.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  openBundleWriter,
  startPackThread,
  writeBundle,
  type BundleEntry,
  type PackThread,
} from "../../packer/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Two batches of a small tree with a file of several zstd jobs, so packing takes a while. */
async function batchesIn(dir: string, seed: string): Promise<BundleEntry[][]> {
  await mkdir(join(dir, "lib"), { recursive: true });
  await writeFile(join(dir, "big.bin"), randomBytes(9 << 20));
  await writeFile(join(dir, "lib", "a.js"), `module.exports = "${seed}";\n`);
  return [
    [{ path: "big.bin", type: "file", source: join(dir, "big.bin") }],
    [
      { path: "lib/a.js", type: "file", source: join(dir, "lib", "a.js") },
      { path: "lib/seed", type: "file", data: Buffer.from(seed) },
      { path: "lib/link.js", type: "symlink", linkTarget: "a.js" },
    ],
  ];
}

/** The digest a writer of its own gives for these batches. */
async function aloneDigest(batches: BundleEntry[][]): Promise<string> {
  const writer = openBundleWriter({ outDir: await tempDir() });
  try {
    for (const batch of batches) writer.add(batch);
    return (await writer.finish()).digest;
  } finally {
    await writer.abort();
  }
}

async function withThread<T>(
  body: (thread: PackThread) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const thread = startPackThread(signal);
  try {
    return await body(thread);
  } finally {
    await thread.close(true);
  }
}

describe("writers sharing a pack thread", () => {
  it("give the bytes each gives alone, whatever the order their batches come in", async () => {
    const a = await batchesIn(await tempDir(), "a");
    const b = await batchesIn(await tempDir(), "b");
    const [outA, outB] = [await tempDir(), await tempDir()];
    const digests = await withThread(async (thread) => {
      const writerA = openBundleWriter({ outDir: outA, thread });
      const writerB = openBundleWriter({ outDir: outB, thread });
      writerA.add(a[0]!);
      writerB.add(b[0]!);
      writerB.add(b[1]!);
      const finishedB = writerB.finish();
      writerA.add(a[1]!);
      return [(await writerA.finish()).digest, (await finishedB).digest];
    });
    expect(digests).toEqual([await aloneDigest(a), await aloneDigest(b)]);
    expect(await readdir(outA)).toEqual([`${digests[0]!.slice(7)}.tar.zst`]);
  });

  it("one after another, each taking the last one's compression context, give the bytes each gives alone", async () => {
    const a = await batchesIn(await tempDir(), "a");
    const b = await batchesIn(await tempDir(), "b");
    const outs = [await tempDir(), await tempDir(), await tempDir()];
    const digests = await withThread(async (thread) => {
      // Stopped mid-frame (past its first progress report): its context is not taken again.
      let packing!: () => void;
      const packed = new Promise<void>((resolve) => (packing = resolve));
      const dropped = openBundleWriter({
        outDir: outs[0]!,
        thread,
        onEvent: () => packing(),
      });
      dropped.add(a[0]!);
      await packed;
      await dropped.abort();
      const first = openBundleWriter({ outDir: outs[1]!, thread });
      // Started while the first packs: it takes the first's context once that one is done.
      const second = openBundleWriter({ outDir: outs[2]!, thread });
      for (const batch of a) first.add(batch);
      const firstDone = first.finish();
      for (const batch of b) second.add(batch);
      const digests = [
        (await firstDone).digest,
        (await second.finish()).digest,
      ];
      const third = openBundleWriter({ outDir: outs[0]!, thread, threads: 1 });
      for (const batch of a) third.add(batch);
      return [...digests, (await third.finish()).digest];
    });
    const [aloneA, aloneB] = [await aloneDigest(a), await aloneDigest(b)];
    expect(digests).toEqual([aloneA, aloneB, aloneA]);
  });

  it("fail alone: a missing source fails its writer, the other finishes, nothing of the failed one is left", async () => {
    const good = await batchesIn(await tempDir(), "good");
    const src = await tempDir();
    const [outBad, outGood] = [await tempDir(), await tempDir()];
    const digest = await withThread(async (thread) => {
      const bad = openBundleWriter({ outDir: outBad, thread });
      const writer = openBundleWriter({ outDir: outGood, thread });
      bad.add([{ path: "gone", type: "file", source: join(src, "gone") }]);
      for (const batch of good) writer.add(batch);
      await expect(bad.finish()).rejects.toMatchObject({ code: "ENOENT" });
      return (await writer.finish()).digest;
    });
    expect(digest).toBe(await aloneDigest(good));
    expect(await readdir(outBad)).toEqual([]);
  });

  it("abort alone: a writer aborted mid-way leaves nothing, the other still finishes", async () => {
    const first = await batchesIn(await tempDir(), "first");
    const second = await batchesIn(await tempDir(), "second");
    const [outFirst, outSecond] = [await tempDir(), await tempDir()];
    const digest = await withThread(async (thread) => {
      const dropped = openBundleWriter({ outDir: outFirst, thread });
      const kept = openBundleWriter({ outDir: outSecond, thread });
      dropped.add(first[0]!);
      for (const batch of second) kept.add(batch);
      await dropped.abort();
      expect(await readdir(outFirst)).toEqual([]);
      return (await kept.finish()).digest;
    });
    expect(digest).toBe(await aloneDigest(second));
    // Still nothing once the thread has handled every later message (a start that arrived after
    // its drop used to open a temp here).
    expect(await readdir(outFirst)).toEqual([]);
  });

  it("stop together when the thread's signal aborts, leaving nothing", async () => {
    const a = await batchesIn(await tempDir(), "a");
    const b = await batchesIn(await tempDir(), "b");
    const [outA, outB] = [await tempDir(), await tempDir()];
    const controller = new AbortController();
    await withThread(async (thread) => {
      const options = { thread, signal: controller.signal };
      const writerA = openBundleWriter({ ...options, outDir: outA });
      const writerB = openBundleWriter({ ...options, outDir: outB });
      for (const batch of a) writerA.add(batch);
      for (const batch of b) writerB.add(batch);
      const finished = [writerA.finish(), writerB.finish()].map((f) =>
        expect(f).rejects.toThrow("stop"),
      );
      controller.abort(new Error("stop"));
      await Promise.all(finished);
    }, controller.signal);
    expect(await readdir(outA)).toEqual([]);
    expect(await readdir(outB)).toEqual([]);
  });
});

describe("a source that is not the size it says", () => {
  // Real files whose stat size is not what reading them gives: procfs says 0 and has more,
  // sysfs says a page and has a line.
  for (const [what, source] of [
    ["has bytes past its size", "/proc/version"],
    ["ends before its size", "/sys/kernel/uevent_seqnum"],
  ] as const) {
    it(`is refused when it ${what}, and nothing is left`, async () => {
      const out = await tempDir();
      await expect(
        writeBundle({
          entries: [{ path: "file", type: "file", source }],
          outDir: out,
        }),
      ).rejects.toMatchObject({ code: "ENVPACK_INPUT_MANIFEST_INVALID" });
      expect(await readdir(out)).toEqual([]);
    });
  }
});
