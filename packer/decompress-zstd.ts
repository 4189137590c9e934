// Step-by-step zstd decompression into two output buffers used in turn: the caller takes one
// buffer's worth at a time, whatever the compression ratio, and no buffer is allocated per step
// (a fresh 128 KB buffer per step cost more in page faults than the copy out of zstd's window).

import zstd from "zstd-napi/binding.js";

const OUTPUT_SIZE = zstd.dStreamOutSize();

/** One step of {@link ZstdDecoder.step}. */
export interface DecodedStep {
  /** What this step produced (possibly empty): a view of an output buffer, see the decoder. */
  output: Buffer;
  /** The input this step left unread. */
  rest: Buffer;
  /** True once `rest` is empty and the decoder holds nothing more to flush from it. */
  drained: boolean;
}

/** A zstd stream (one or more frames) decoded one output buffer at a time. */
export interface ZstdDecoder {
  /**
   * Decodes from `input` into the output buffer not used by the previous step. The output is
   * overwritten two steps later: the caller must be done with it (and with any view of it) by
   * then.
   * @throws Error from zstd on corrupt data
   */
  step(input: Buffer): DecodedStep;
  /** @throws Error when the input ended in the middle of a frame */
  end(): void;
}

/** A new decoder with its own context and pair of output buffers. */
export function openZstdDecoder(): ZstdDecoder {
  const dctx = new zstd.DCtx();
  const outputs = [
    Buffer.allocUnsafeSlow(OUTPUT_SIZE),
    Buffer.allocUnsafeSlow(OUTPUT_SIZE),
  ];
  let turn = 0;
  let inFrame = false;
  return {
    step(input) {
      const buffer = outputs[turn] as Buffer;
      turn ^= 1;
      const [left, produced, consumed] = dctx.decompressStream(buffer, input);
      const rest = input.subarray(consumed);
      // Done with this input once it is consumed and the decoder holds nothing more to flush.
      const drained =
        rest.length === 0 && (produced < OUTPUT_SIZE || left === 0);
      if (drained) inFrame = left !== 0;
      return { output: buffer.subarray(0, produced), rest, drained };
    },
    end() {
      if (inFrame)
        throw new Error("the zstd stream ends in the middle of a frame");
    },
  };
}
