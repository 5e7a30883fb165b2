import { createConsola } from "consola";
import { useColor } from "./_color.ts";

/** Messages for people: all on stderr, so stdout carries only results (`p ls --json | jq`). */
export const log = createConsola({
  stdout: process.stderr,
  stderr: process.stderr,
  formatOptions: { colors: useColor(), date: false },
});
