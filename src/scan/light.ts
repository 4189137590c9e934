// The scan layer's light barrel for start-up paths (a cache hit): package tree stamps and the
// package scans store, no parser.

export { PackageScans, packageScansFile } from "./js/package-scans.js";
export { lookupAncestors, nodeModulesLookups } from "./npm/lookup-dirs.js";
export {
  packageTreeStamp,
  packageTrees,
  isTreeUnchanged,
  treeEntries,
  walkPackageTree,
  type PackageTreeWalk,
  type TreeEntry,
  type PackageTrees,
} from "./npm/package-tree.js";
