import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BATCH_SCRIPT,
  bare,
  JOB_FILES,
  LIBRARY,
  SCRIPTS,
  type ScriptName,
  scriptCommand,
  scriptText,
  sharedFor,
} from "../src/protocol/index.ts";

// The worker-side scripts are real files: each is checked by the shells it may meet and
// by shellcheck, and none names a path that the layout module does not.
const dir = join(import.meta.dir, "..", "src", "protocol", "sh");
const files = readdirSync(dir).filter((f) => f.endsWith(".sh"));
const names = Object.keys(SCRIPTS) as ScriptName[];
// the shared functions, and the batch script's own text
const LIBRARY_FILES = [...Object.keys(LIBRARY).map((n) => `${n}.sh`), "batch.sh"];

const check = (argv: string[], text: string) => {
  const r = Bun.spawnSync([...argv], { stdin: new TextEncoder().encode(text), stderr: "pipe" });
  return r.exitCode === 0 ? "" : r.stderr.toString() || r.stdout.toString() || `exit ${r.exitCode}`;
};

describe("worker-side scripts", () => {
  test("every script file is one the protocol runs (or the library)", () => {
    expect(files.sort()).toEqual([...names.map((n) => `${n}.sh`), ...LIBRARY_FILES].sort());
  });

  test.each(names)("%s.sh parses in sh, dash and bash, as it is sent", (name) => {
    for (const shell of ["sh", "dash", "bash"]) expect(check([shell, "-n"], scriptText(name))).toBe("");
  });

  test("a script carries the shared functions it calls, and those they call, and no others", () => {
    const shared = [
      "P_JOBS=$P_ROOT/jobs\n",
      'one() {\n  two "$1"\n}\n',
      "two() {\n  case $1 in x) live=three ;; esac\n}\n",
      "three() {\n  :\n}\n",
      "unused() {\n  one\n}\n",
      "P_TEXT='\n  one_not_a_call\n'\n",
      "four_five() {\n  :\n}\n",
    ].join("");
    expect(sharedFor("one x\n", shared)).toBe(
      'P_JOBS=$P_ROOT/jobs\none() {\n  two "$1"\n}\ntwo() {\n  case $1 in x) live=three ;; esac\n}\n' +
        "three() {\n  :\n}\nP_TEXT='\n  one_not_a_call\n'\n",
    );
    expect(sharedFor("four_five\n", shared)).toContain("four_five() {");
    expect(sharedFor("four\n", shared)).not.toContain("four_five() {");
  });

  test.each(names)("%s.sh defines every shared function it calls, as it is sent", (name) => {
    const text = scriptText(name);
    const all = [...`${Object.values(LIBRARY).join("\n")}`.matchAll(/^([a-z_]+)\(\) \{$/gm)].map((m) => m[1]!);
    const defined = new Set([...text.matchAll(/^([a-z_]+)\(\) \{$/gm)].map((m) => m[1]!));
    for (const fn of all)
      if (new RegExp(`\\b${fn}\\b`).test(text.replace(/^[a-z_]+\(\) \{$/gm, ""))) expect(defined).toContain(fn);
  });

  test.each([
    ["# a comment\necho a\n", "echo a\n"],
    ["  # indented\n\tx=1 # kept: code first\n", "\tx=1 # kept: code first\n"],
    ["#!/bin/sh\necho '#not a comment'\n", "#!/bin/sh\necho '#not a comment'\n"],
    ["awk '\n  # awk's comment\n  { print }'\n", "awk '\n  { print }'\n"],
  ])("bare(%j) is %j", (text, sent) => {
    expect(bare(text)).toBe(sent);
  });

  test("what the worker gets carries no comment lines, and is as it was otherwise", () => {
    for (const name of names) {
      const text = scriptText(name);
      expect(text).not.toMatch(/^[ \t]*#(?!!)/m);
      // the mirror's command rides on every sync's connection: it stays small
      if (name === "mirror") expect(scriptCommand(name, ["m", "w", "-", "no"]).length).toBeLessThan(12_000);
    }
    const file = readFileSync(join(dir, "mirror.sh"), "utf8");
    expect(SCRIPTS.mirror).toBe(
      file
        .split("\n")
        .filter((l) => !/^\s*#/.test(l))
        .join("\n"),
    );
  });

  test("file_line reads a file's first line with no process, or gives the default", () => {
    const dir = mkdtempSync(join(tmpdir(), "p-file-line-"));
    writeFileSync(join(dir, "line"), "7\nmore\n");
    writeFileSync(join(dir, "no-newline"), "8");
    writeFileSync(join(dir, "empty"), "");
    const script = `${LIBRARY.lib}\nfor f in line no-newline empty missing; do file_line "$f" D; printf '%s|' "$file_line"; done`;
    for (const shell of ["sh", "dash", "bash"]) {
      const r = Bun.spawnSync([shell, "-c", script], { cwd: dir, stderr: "pipe" });
      expect(`${r.stdout}${r.stderr}`).toBe("7|8|D|D|");
    }
    rmSync(dir, { recursive: true });
  });

  test("a Slurm job's batch script parses in sh, dash and bash", () => {
    for (const shell of ["sh", "dash", "bash"]) expect(check([shell, "-n"], BATCH_SCRIPT)).toBe("");
    expect(BATCH_SCRIPT.startsWith("#!/bin/sh\n")).toBe(true);
  });

  test.each([...names.map((n) => `${n}.sh`), ...LIBRARY_FILES])("%s passes shellcheck", (file) => {
    const r = Bun.spawnSync(["shellcheck", "--shell=sh", "--external-sources", join(dir, file)], { stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test.each(Object.keys(LIBRARY))("the library %s.sh defines functions only: sourcing it runs nothing", (name) => {
    const text = LIBRARY[name as keyof typeof LIBRARY];
    const r = Bun.spawnSync(["sh", "-c", `cd /nonexistent-dir-p\n${text}\necho ok`], {
      env: { PATH: process.env.PATH! },
    });
    expect(r.stdout.toString()).toBe("ok\n");
  });

  test("no script names a place on the worker: paths come from the layout", () => {
    for (const file of files) {
      const text = readFileSync(join(dir, file), "utf8");
      expect(text).not.toMatch(/\.p\/|\$HOME|\.(spare|lock|keep|tick|part)\b/);
    }
  });

  test("the files a script reads or writes in a job dir are the layout's", () => {
    const known = new Set<string>(Object.values(JOB_FILES));
    const used = new Set<string>();
    for (const file of files) {
      const text = readFileSync(join(dir, file), "utf8");
      for (const m of text.matchAll(/"\$[a-z_]+\/\.?([a-z_.]+?)(?:\.tmp)?"/g)) used.add(m[1]!);
      for (const m of text.matchAll(/put "\$[a-z_]+" ([a-z_]+)/g)) used.add(m[1]!);
    }
    expect([...used].filter((f) => !known.has(f))).toEqual([]);
    expect(used.size).toBeGreaterThan(5);
  });

  test("data travels as quoted arguments: the script's text is the same whatever the data", () => {
    const hostile = ["'; rm -rf ~ #", "$(id)", "`id`", "a\nb", "ü ✓", ""];
    const cmd = scriptCommand("status", hostile, "/scratch/a b/p");
    expect(cmd.startsWith(`sh -c '${scriptText("status").replaceAll("'", `'\\''`)}' p-status `)).toBe(true);
    const argv = Bun.spawnSync([
      "sh",
      "-c",
      `set -- ${cmd.slice(cmd.indexOf(" p-status ") + 10)}; printf '%s\\0' "$@"`,
    ]);
    expect(argv.stdout.toString().split("\0").slice(0, -1)).toEqual(["/scratch/a b/p", ...hostile]);
  });
});
