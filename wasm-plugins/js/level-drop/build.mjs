// Builds plugin.js into a component for weir:plugin/processor@0.1.0.
// Usage: node build.mjs [OUT.wasm]   (default: level-drop.wasm here)
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "level-drop.wasm"));
const source = await readFile(join(here, "plugin.js"), "utf8");
const { component } = await componentize(source, {
  witPath: join(here, "../../../sdk-wit/wit/deps/plugin-0.1.0"),
  worldName: "processor",
  // No fetch handler, no HTTP, no stdio, no clocks: the plugin needs none of them.
  disableFeatures: ["http", "fetch-event", "stdio", "clocks", "random"],
});
await writeFile(out, component);
console.log(out);
