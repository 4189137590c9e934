// The registry starter the benchmarks use, for tests too.

export {
  freePort,
  startRegistry,
  type RegistryServer,
} from "../../bench/lib/registry-server.js";
