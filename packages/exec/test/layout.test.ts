import { describe, expect, test } from "bun:test";
import {
  jobDir,
  MIRRORS_DIR,
  mirrorCommand,
  mirrorDir,
  mirrorFamily,
  resolveRoot,
  SHELL_LAYOUT,
  SUFFIX,
  workDir,
} from "../src/protocol/index.ts";

const ID = "00000000-0000-4000-8000-000000000001";

describe("layout", () => {
  test("job and work dirs are under .p, by id; anything but a UUID is refused", () => {
    expect(jobDir(ID)).toBe(`.p/jobs/${ID}`);
    expect(workDir(ID)).toBe(`.p/workdirs/${ID}`);
    for (const bad of ["../x", "", "AAAAAAAA-0000-4000-8000-000000000001", `${ID}/..`])
      expect(() => jobDir(bad)).toThrow(/not a UUID/);
  });

  test("a mirror is named by who syncs what from where, and by nothing else", () => {
    const key = { uid: 1000, host: "laptop", path: "/home/me/src/app" };
    const m = mirrorDir(key);
    expect(m).toMatch(new RegExp(`^${MIRRORS_DIR}/[0-9a-f]{24}$`));
    expect(mirrorDir({ ...key })).toBe(m);
    for (const other of [{ uid: 1001 }, { host: "desktop" }, { path: "/home/me/src/app2" }])
      expect(mirrorDir({ ...key, ...other })).not.toBe(m);
  });

  test("the scripts get the layout as variables under the worker's root, from the same constants", () => {
    const vars = Bun.spawnSync(["sh", "-c", `P_ROOT=.p\n${SHELL_LAYOUT}\necho "$P_MIRRORS $P_LOCK $P_SPARE"`]);
    expect(vars.stdout.toString()).toBe(`${MIRRORS_DIR} ${SUFFIX.lock} ${SUFFIX.spare}\n`);
  });

  test("the mirror's remote command carries the root, the mirror and the work dir as quoted arguments", () => {
    const cmd = mirrorCommand(".p/mirrors/it's", `${workDir(ID)}/`);
    expect(cmd).toStartWith("sh -c '");
    expect(cmd).toEndWith(` p-mirror .p '.p/mirrors/it'\\''s' .p/workdirs/${ID} - no - - no`);
    const elsewhere = mirrorCommand(
      mirrorDir({ uid: 1, host: "h", path: "/a" }, "/scratch/me/p"),
      workDir(ID, "/scratch/me/p"),
      { root: "/scratch/me/p" },
    );
    expect(elsewhere).toMatch(
      new RegExp(
        ` p-mirror /scratch/me/p /scratch/me/p/mirrors/[0-9a-f]{24} /scratch/me/p/workdirs/${ID} - no - - no$`,
      ),
    );
  });

  test("a mirror's family: the same client user and repository only; a family that is not a hash is refused", () => {
    const family = mirrorFamily({ uid: 1000, host: "laptop", repository: "remote:git@host:org/app.git" });
    expect(family).toMatch(/^[0-9a-f]{32}$/);
    expect(mirrorFamily({ uid: 1000, host: "laptop", repository: "remote:git@host:org/app.git" })).toBe(family);
    for (const other of [
      { uid: 1001, host: "laptop", repository: "remote:git@host:org/app.git" },
      { uid: 1000, host: "desktop", repository: "remote:git@host:org/app.git" },
      { uid: 1000, host: "laptop", repository: "remote:git@host:org/lib.git" },
    ])
      expect(mirrorFamily(other)).not.toBe(family);
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { family })).toEndWith(` ${family} no - - no`);
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { family, seed: true })).toEndWith(` ${family} yes - - no`);
    expect(() => mirrorCommand(".p/mirrors/m", workDir(ID), { family: "x; rm -rf ~" })).toThrow("is not a hash");
  });

  test("a sync's marks: the one it leaves the mirror, and the one a sync of what changed expects there; no other text", () => {
    const next = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    const expect_ = "Ab_9-xyZ";
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next } })).toEndWith(` - no - ${next} no`);
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next, expect: expect_ } })).toEndWith(
      ` - no ${expect_} ${next} no`,
    );
    // (another sync of the tree into another job's work dir comes right after: the mirror stays)
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next }, follows: true })).toEndWith(
      ` - no - ${next} yes`,
    );
    // (the mirror holds the tree already: the work dir is copied from it, if it holds that mark)
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next, expect: expect_ }, copy: 0 })).toEndWith(
      ` - no ${expect_} ${next} copy:0`,
    );
    expect(mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next, expect: expect_ }, copy: 3 })).toEndWith(
      ` - no ${expect_} ${next} copy:3`,
    );
    expect(() => mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next }, copy: 0 })).toThrow(
      "needs the mark the mirror holds",
    );
    for (const bad of ["short", "has space in it", "x'; rm -rf ~; '", "a".repeat(65)])
      expect(() => mirrorCommand(".p/mirrors/m", workDir(ID), { token: { next: bad } })).toThrow("is not one");
  });
});

describe("a worker's root", () => {
  const worker = { user: "ann", home: "/home/ann" };
  test.each([
    ["/scratch/$USER/p", "/scratch/ann/p"],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's ${USER}, as a user writes it
    ["/scratch/${USER}/p/", "/scratch/ann/p"],
    ["~/.p", ".p"],
    ["~/work/p", "work/p"],
    ["$HOME/p", "p"],
    ["/home/ann/x//p", "x/p"],
    ["rel/p", "rel/p"],
  ])("%p is %p", (given, path) => {
    expect(resolveRoot(given, worker)).toBe(path);
  });

  test.each(["~", "", "/", "../up", "a/../b", "~bob/p", "/x/$(id)", "/x/`id`", "$SCRATCH/p"])(
    "%p is refused",
    (given) => {
      expect(() => resolveRoot(given, worker)).toThrow(/root/);
    },
  );

  test("$USER needs the worker's word", () => {
    expect(() => resolveRoot("/scratch/$USER/p", {})).toThrow(/\$USER, which the worker did not say/);
  });
});
