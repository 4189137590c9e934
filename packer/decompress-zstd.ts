// Streaming zstd decompression that waits for its reader: one output buffer at a time, whatever
// the compression ratio (zstd-napi's DecompressStream pushes all the output of a chunk at once,
// so 64 KB of zeros could become gigabytes in memory before the writer saw any of it).

import zstd from "zstd-napi/binding.js";

const OUTPUT_SIZE = zstd.dStreamOutSize();

/**
 * Decompresses a zstd stream (one or more frames) for `stream/promises` `pipeline()`: each
 * output buffer is yielded, so the next is made only when the next stage has taken it.
 * @throws Error from zstd on corrupt data, or when the input ends inside a frame
 */
export async function* decompressZstd(
  source: AsyncIterable<Buffer>,
): AsyncGenerator<Buffer> {
  const dctx = new zstd.DCtx();
  let inFrame = false;
  for await (const chunk of source) {
    let input = chunk;
    for (;;) {
      const output = Buffer.allocUnsafe(OUTPUT_SIZE);
      const [left, produced, consumed] = dctx.decompressStream(output, input);
      input = input.subarray(consumed);
      if (produced > 0) yield output.subarray(0, produced);
      // Done with this chunk once it is consumed and the decoder holds nothing more to flush.
      if (input.length === 0 && (produced < OUTPUT_SIZE || left === 0)) {
        inFrame = left !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error("the zstd stream ends in the middle of a frame");
}
