import { describe, expect, test } from "bun:test";
import { jobDir, MIRRORS_DIR, mirrorCommand, mirrorDir, SHELL_LAYOUT, SUFFIX, workDir } from "../src/protocol/index.ts";

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

  test("the scripts get the layout as variables, from the same constants", () => {
    expect(SHELL_LAYOUT).toMatchObject({ P_MIRRORS: MIRRORS_DIR, P_LOCK: SUFFIX.lock, P_SPARE: SUFFIX.spare });
  });

  test("the mirror's remote command carries the mirror and the work dir as quoted arguments", () => {
    const cmd = mirrorCommand(".p/mirrors/it's", `${workDir(ID)}/`);
    expect(cmd).toStartWith("sh -c '");
    expect(cmd).toEndWith(` p-mirror '.p/mirrors/it'\\''s' .p/workdirs/${ID}`);
  });
});
