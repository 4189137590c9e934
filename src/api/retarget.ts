// Points a Node manifest at another Node version and platform: the runtime changes, and
// per-platform native packages are swapped for the target's variant.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  InputError,
  computeInputDigest,
  isNotFound,
  type Manifest,
  type PackageEntry,
} from "../core/light.js";

/** The Node version and platform a bundle is built for. */
export interface NodeTarget {
  version: string;
  platform: string;
}

/**
 * Returns the manifest for `target`. Packages restricted (npm `os`/`cpu`) to another platform are
 * replaced by the installed package of the same name with the target's os and arch (the napi-rs
 * and esbuild naming: `@scope/pkg-linux-x64-gnu` → `@scope/pkg-darwin-arm64`).
 * @throws InputError ENVPACK_INPUT_TARGET_VARIANT_MISSING when the target's variant is not installed
 */
export async function retarget(
  manifest: Manifest,
  target: NodeTarget,
): Promise<Manifest> {
  if (manifest.runtime.name !== "node") return manifest;
  const host = manifest.runtime;
  const version = target.version.replace(/^v/, "");
  const [os = "", arch = ""] = target.platform.split("-");
  const libc =
    os === "linux"
      ? host.platform.startsWith("linux")
        ? (host.libc ?? "glibc")
        : "glibc"
      : undefined;
  if (version === host.version && target.platform === host.platform)
    return manifest;
  const renamed = new Map<string, string>();
  const packages: PackageEntry[] = [];
  for (const pkg of manifest.packages) {
    if (fits(pkg, os, arch)) {
      packages.push(pkg);
      continue;
    }
    const [hostOs = "", hostArch = ""] = host.platform.split("-");
    let name = pkg.name.replace(hostOs, os).replace(hostArch, arch);
    if (os !== "linux") name = name.replace(/-(gnu|musl)$/, "");
    const path = `node_modules/${name}`;
    let json: { version?: string; os?: string[]; cpu?: string[] };
    try {
      json = JSON.parse(
        await readFile(join(manifest.root, path, "package.json"), "utf8"),
      ) as typeof json;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const parents = manifest.packages
        .filter((p) => p.dependencies.includes(pkg.id))
        .map((p) => `${p.name}@${p.version}`);
      throw new InputError(
        "ENVPACK_INPUT_TARGET_VARIANT_MISSING",
        `${parents.join(", ") || pkg.name} needs ${name} on ${target.platform}, which is not installed (this machine has ${pkg.name})`,
        {
          hint: `Install the target's variant too, e.g. \`npm install --no-save --os=${os} --cpu=${arch} ${name}\`, then build again.`,
          details: { package: name, platform: target.platform },
        },
      );
    }
    renamed.set(pkg.id, path);
    packages.push({
      ...pkg,
      id: path,
      name,
      path,
      version: json.version ?? pkg.version,
      integrity: null,
      integritySource: "none",
      ...(json.os ? { os: json.os } : {}),
      ...(json.cpu ? { cpu: json.cpu } : {}),
    });
  }
  const retargeted = {
    ...manifest,
    runtime: {
      name: "node" as const,
      version,
      platform: target.platform,
      ...(libc ? { libc: libc as "glibc" | "musl" } : {}),
    },
    packages: packages
      .map((p) => ({
        ...p,
        dependencies: p.dependencies.map((d) => renamed.get(d) ?? d),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
  return { ...retargeted, inputDigest: computeInputDigest(retargeted) };
}

/** Whether a package's npm `os`/`cpu` restrictions allow the target. */
function fits(pkg: PackageEntry, os: string, arch: string): boolean {
  const allows = (list: string[] | undefined, value: string) =>
    list === undefined ||
    list.length === 0 ||
    (list.includes(value) && !list.includes(`!${value}`)) ||
    (list.every((v) => v.startsWith("!")) && !list.includes(`!${value}`));
  return allows(pkg.os, os) && allows(pkg.cpu, arch);
}
