// envpack's own version, from its package.json.

import { envpackPackageJson } from "../core/light.js";

/** The version in envpack's package.json (works from `src/` under a test runner and from `dist/`). */
export function envpackVersion(): string {
  return envpackPackageJson().version;
}
