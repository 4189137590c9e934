// envpack's own files of runtime/ (what runs on a worker), by name.

import { envpackFile } from "../core/light.js";

/** The path of `runtime/<name>` in envpack's package (see core's envpackFile). */
export function runtimeFile(name: string): string {
  return envpackFile(`runtime/${name}`);
}
