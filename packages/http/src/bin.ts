/**
 * `npm start`: turns on Node's compile cache, then runs the server (`main.ts`). The cache keeps
 * the compiled code of every module in the OS temporary directory (`node-compile-cache`, or
 * `NODE_COMPILE_CACHE`), so later starts skip compiling it; it is enabled before anything else
 * is imported, since a module is compiled when it is loaded.
 */
import { enableCompileCache } from "node:module"

enableCompileCache()
await import("./main.ts")
