// Planning a Node bundle from the package tree walks its scan took lists the same entries (and
// warns the same) as reading each package directory again.

import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scan } from "../../src/api/index.js";
import { planBundle } from "../../src/api/plan-bundle.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { packageTrees } from "../../src/scan/light.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** The packages layer's entries of a plan, by path, and the warnings planning gave. */
async function packagesPlanned(
  manifest: Awaited<ReturnType<typeof scan>>,
  trees?: (dir: string) => ReturnType<ReturnType<typeof packageTrees>>,
) {
  const warnings: EnvpackEvent[] = [];
  const plan = await planBundle(manifest, {
    cacheDir: await tempDir(),
    roles: new Set(["packages"]),
    packageTrees: trees,
    onEvent: (e) => warnings.push(e),
  });
  await plan.dispose();
  const entries = [...plan.leading, ...plan.entries].sort((a, b) =>
    a.path < b.path ? -1 : 1,
  );
  return { entries, warnings };
}

describe("planning a Node bundle's packages", () => {
  it("from the scan's walks lists what reading the directories lists: nested directories, links in and out, no nested node_modules", async () => {
    const app = await appCopy("hello");
    const ms = join(app, "node_modules", "ms");
    await mkdir(join(ms, "lib", "deep"), { recursive: true });
    await writeFile(join(ms, "lib", "deep", "x.js"), "module.exports = 1;\n");
    await symlink("deep/x.js", join(ms, "lib", "inner.js"));
    await symlink("/etc/hostname", join(ms, "outside"));
    await mkdir(join(ms, "node_modules", "nested"), { recursive: true });
    await writeFile(join(ms, "node_modules", "nested", "index.js"), "\n");
    const manifest = await scan({ entries: ["src/main.ts"], cwd: app });
    expect(manifest.packages.map((p) => p.path)).toContain("node_modules/ms");

    const walked = new Set<string>();
    const trees = packageTrees();
    const fromWalks = await packagesPlanned(manifest, (dir) => {
      walked.add(dir);
      return trees(dir);
    });
    const listed = await packagesPlanned(manifest);

    expect(walked).toEqual(
      new Set(manifest.packages.map((p) => join(app, ...p.path.split("/")))),
    );
    expect(fromWalks).toEqual(listed);
    const paths = listed.entries.map((e) => e.path);
    expect(paths).toContain("app/node_modules/ms/lib/deep/x.js");
    expect(listed.entries).toContainEqual(
      expect.objectContaining({
        path: "app/node_modules/ms/lib/inner.js",
        type: "symlink",
        linkTarget: "deep/x.js",
      }),
    );
    expect(paths).not.toContain("app/node_modules/ms/outside");
    expect(paths.some((p) => p.includes("ms/node_modules"))).toBe(false);
    expect(listed.warnings).toMatchObject([
      { type: "warn", code: "ENVPACK_WARN_LINK_SKIPPED" },
    ]);
  });
});
