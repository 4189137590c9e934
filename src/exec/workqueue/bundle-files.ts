// What a bundle is on a worker: the cached files runtime/envpack-run is given. A single-blob
// bundle is one file; a layered bundle (format 3) is its index plus one cached file per layer,
// each named by its digest, so a worker that holds a layer is never sent it again.

import { stat } from "node:fs/promises";
import type { TaskBundle } from "../../core/index.js";
import { layerBeside, readLayeredIndex } from "../../../packer/index.js";
import type { ShippedFile } from "./task-command.js";

/** The files of one bundle: `bundle` is the one envpack-run is given, its layers lie beside it. */
export interface BundleFiles {
  bundle: ShippedFile;
  /** A layered bundle's layers, sent before its index. */
  layers?: ShippedFile[] | undefined;
}

/**
 * The cached files of a bundle, named as runtime/envpack-run requires: `<hex>.tar.zst` for a
 * single-blob bundle and each layer, `<hex>.json` for a layered bundle's index (its layers are
 * found beside it in the worker's cache).
 * @throws IntegrityError when a layered bundle's index is damaged or a layer is not beside it
 */
export async function bundleFiles(bundle: TaskBundle): Promise<BundleFiles> {
  const hex = (digest: string) => digest.slice("sha256:".length);
  const index = await readLayeredIndex(bundle.path, bundle.digest);
  const file = async (path: string, cacheName: string) => ({
    cacheName,
    path,
    size: (await stat(path)).size,
    mode: 0o644,
  });
  if (index === undefined)
    return {
      bundle: await file(bundle.path, `${hex(bundle.digest)}.tar.zst`),
    };
  const layers: ShippedFile[] = [];
  for (const layer of index.layers)
    layers.push(
      await file(
        await layerBeside(bundle.path, layer.digest),
        `${hex(layer.digest)}.tar.zst`,
      ),
    );
  return {
    bundle: await file(bundle.path, `${hex(bundle.digest)}.json`),
    layers,
  };
}
