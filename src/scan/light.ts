// The scan layer's light barrel for start-up paths (a cache hit): package tree stamps, no parser.

export { packageTreeStamp } from "./npm/package-tree.js";
