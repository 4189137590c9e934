// A runnable tour of the Executor on the exec-tasks fixture app (installed by `npm test` or
// `npm run fixtures`): `npm run build && node examples/executor.mjs`.
import { Executor } from "envpack";

const tasks = new URL(
  "../fixtures/apps/exec-tasks/src/tasks.ts",
  import.meta.url,
);
const executor = new Executor({
  workers: [{ cores: 4, memory: 4000 }, { cores: 2 }], // default: one worker = this machine
  pack: true, // scan + build + unpack once per worker; tasks run with the bundle's node
  autolabel: true, // measure, then label each app's tasks from its peaks
  autolabelWindow: 2, // ...after its first 2 tasks, run on whole workers
  onEvent: (e) => {
    if (e.type === "label:chosen")
      console.error(`label for ${e.category}: ${JSON.stringify(e.label)}`);
  },
});
const sleep = executor.app(tasks, "sleep", {
  resources: { cores: 1, memory: 200 },
});
const alloc = executor.app(tasks, "alloc");
const duration = executor
  .app(tasks, "usesDep")
  .with({ resources: { cores: 1 } });
const count = executor.command("grep -c $1 /etc/services");

const results = await Promise.all([
  ...Array.from({ length: 6 }, () => sleep(200)),
  alloc(50, 100),
  alloc(80, 100),
  duration("2h"),
  count("tcp"),
]);
console.log(JSON.stringify(results));
console.log(
  JSON.stringify(
    executor.summary().map((c) => [c.category, c.samples, c.label]),
  ),
);
await executor.shutdown();
