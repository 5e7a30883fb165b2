import { describe, expect, test } from "bun:test";
import { assertSbatchArg, type LaunchSpec, launchCommand, sbatchOptions } from "../src/protocol/index.ts";

// A Slurm worker's job as sbatch is asked for it: one option word each, no shell between.
const ID = "3f2a1b9c-0000-4000-8000-000000000001";
const spec = (more: Partial<LaunchSpec>): LaunchSpec => ({
  id: ID,
  command: "true",
  cwd: "/c",
  worker: "hpc",
  ...more,
});
const OWN = [
  "--parsable",
  "--export=NONE",
  "--output=/dev/null",
  "--error=/dev/null",
  "--kill-on-invalid-dep=yes",
  "--no-requeue",
  "--job-name=p-3f2a1b9c",
];

describe("sbatchOptions", () => {
  test.each<[string, Partial<LaunchSpec>, string[]]>([
    ["nothing asked", { slurm: {} }, []],
    [
      "the worker's partition and account",
      { slurm: { partition: "gpu", account: "lab" } },
      ["--partition=gpu", "--account=lab"],
    ],
    ["CPUs and memory", { slurm: { cpus: 4, mem: "16g" } }, ["--cpus-per-task=4", "--mem=16G"]],
    ["GPUs and the whole node", { slurm: {}, gpus: 2, exclusive: true }, ["--gpus=2", "--exclusive"]],
    ["a time limit, in whole minutes", { slurm: {}, timeoutS: 90 }, ["--time=2"]],
    ["a time limit under a minute", { slurm: {}, timeoutS: 5 }, ["--time=1"]],
    [
      "the user's own, last",
      { slurm: { args: ["--constraint=a100", "--qos=low"] } },
      ["--constraint=a100", "--qos=low"],
    ],
  ])("%s", (_, more, options) => {
    expect(sbatchOptions(spec(more))).toEqual([...OWN, ...options]);
  });

  test.each<[Partial<LaunchSpec>, RegExp]>([
    [{ slurm: { mem: "lots" } }, /--mem "lots" is not a size/],
    [{ slurm: { cpus: 0 } }, /--cpus must be a whole number above 0/],
    [{ slurm: { partition: "a b" } }, /partition "a b" is not one word/],
    [{ slurm: { args: ["--chdir=/"] } }, /p sets --chdir itself/],
  ])("%p is refused", (more, why) => {
    expect(() => sbatchOptions(spec(more))).toThrow(why);
  });

  test("the launch carries them as one argument, a line each, after the secrets' length", () => {
    const cmd = launchCommand(spec({ slurm: { args: ["--comment=a b;$(id)"] } }), false);
    const argv = Bun.spawnSync([
      "sh",
      "-c",
      `set -- ${cmd.slice(cmd.indexOf(" p-launch ") + 10)}; printf '%s\\0' "$@"`,
    ]);
    const args = argv.stdout.toString().split("\0");
    expect(args[13]).toBe([...OWN, "--comment=a b;$(id)"].join("\n"));
    // no capacity and no queue: Slurm is the queue
    expect(args.slice(9, 11)).toEqual(["- -", "1 0"]);
  });
});

describe("assertSbatchArg", () => {
  test.each(["--constraint=a100", "--qos=high", "--requeue", "--comment=two words", "--nodelist=n[1-3]"])(
    "%p is one option",
    (arg) => {
      expect(assertSbatchArg(arg)).toBe(arg);
    },
  );
  test.each([
    ["-C a100", /not one sbatch option/],
    ["constraint=a100", /not one sbatch option/],
    ["--constraint=a\nb", /not one sbatch option/],
    ["--wrap=rm -rf ~", /p sets --wrap itself \(the command follows --\)/],
    ["--time=10", /use --timeout/],
    ["--dependency=afterok:1", /use --after/],
    ["--export=ALL", /use --env or --secret/],
    ["--array=1-10", /p sets --array itself/],
  ])("%p is refused", (arg, why) => {
    expect(() => assertSbatchArg(arg)).toThrow(why);
  });
});
