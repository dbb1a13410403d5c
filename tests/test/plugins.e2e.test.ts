/**
 * Tool plugins named in the configuration are loaded when the real server starts; one that
 * cannot be loaded stops start-up with one line naming it.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runUntilExit, STACK_FRAME } from "../src/harness.ts"

describe("plugins at start-up", () => {
  it("a broken plugin stops start-up with a message naming it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "polyagent-plugins-"))
    try {
      // A module whose default export is not a PolyAgent plugin.
      await writeFile(join(dir, "not-a-plugin.mjs"), "export default { name: 'impostor', tools: [] }\n")
      const config = join(dir, "polyagent.yaml")
      await writeFile(config, `plugins: ["${join(dir, "not-a-plugin.mjs")}"]\n`)
      const exited = await runUntilExit({ POLYAGENT_CONFIG: config, POLYAGENT_DATA_DIR: join(dir, "data") })
      assert.strictEqual(exited.code, 1, exited.stderr)
      assert.include(exited.stderr, "PolyAgent cannot start")
      assert.include(exited.stderr, "not-a-plugin.mjs")
      assert.notMatch(exited.stderr, STACK_FRAME)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
