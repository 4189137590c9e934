// A directory the app names or lists as a whole (templates, locales, data): its files, within a
// size budget, for every scanner.

import { stat } from "node:fs/promises";
import type { OnEvent } from "../core/light.js";
import { listFiles } from "./file-globs.js";

/** An asset directory past either limit is left out with a warning (include it explicitly). */
export const ASSET_DIRECTORY_BUDGET = { files: 1000, bytes: 64 * 1024 * 1024 };

/** Where the app names or lists the directory, for the warning. */
export interface AssetDirectorySource {
  /** How, in words: "named at src/app.js:4", "listed by the traced run". */
  how: string;
  /** The naming file (absolute) and line, when there is one. */
  file?: string | undefined;
  line?: number | undefined;
}

/**
 * The regular files under `dir` (sorted; node_modules, .git and the directories in `skip` not
 * entered), or null when they are over {@link ASSET_DIRECTORY_BUDGET}: then an
 * `ENVPACK_WARN_ASSET_BUDGET` warning names the directory and where it came from.
 */
export async function assetDirectoryFiles(
  dir: string,
  source: AssetDirectorySource,
  onEvent: OnEvent | undefined,
  skip?: ReadonlySet<string>,
): Promise<string[] | null> {
  const { files: maxFiles, bytes: maxBytes } = ASSET_DIRECTORY_BUDGET;
  const files = await listFiles(dir, maxFiles + 1, skip);
  let bytes = 0;
  for (const file of files) bytes += (await stat(file)).size;
  if (files.length <= maxFiles && bytes <= maxBytes) return files;
  onEvent?.({
    type: "warn",
    code: "ENVPACK_WARN_ASSET_BUDGET",
    message: `${dir} (${source.how}) holds ${files.length > maxFiles ? `over ${maxFiles} files` : `${bytes} bytes`}, over the asset budget of ${maxFiles} files and ${maxBytes} bytes; not bundled`,
    data: {
      dir,
      ...(source.file === undefined ? {} : { file: source.file }),
      ...(source.line === undefined ? {} : { line: source.line }),
      files: files.length,
      bytes,
    },
  });
  return null;
}
