import { describe, expect, test } from "bun:test";
import { defaultWorkerName, parseConnection, sshTargetArgs } from "../src/ssh/target.ts";

describe("parseConnection", () => {
  test.each([
    ["beefy", { host: "beefy" }],
    ["user@host", { host: "host", user: "user" }],
    ["user@host:2222", { host: "host", user: "user", port: 2222 }],
    ["host:22", { host: "host", port: 22 }],
    ["10.0.0.5", { host: "10.0.0.5" }],
    ["[::1]:2222", { host: "::1", port: 2222 }],
    ["bob@[fe80::1%eth0]:22", { host: "fe80::1%eth0", user: "bob", port: 22 }],
    ["[::1]", { host: "::1" }],
    ["::1", { host: "::1" }],
    ["2001:db8::7", { host: "2001:db8::7" }],
    ["ssh://me@box.lan:2200", { host: "box.lan", user: "me", port: 2200 }],
    ["  me@box  ", { host: "box", user: "me" }],
  ])("%p", (conn, target) => {
    expect(parseConnection(conn)).toEqual(target);
  });

  test.each([
    ["", /empty/],
    ["user@", /host is empty/],
    ["host:0", /port "0"/],
    ["host:70000", /port "70000"/],
    ["host:ssh", /port "ssh"/],
    ["-oProxyCommand=x", /host/],
    ["a b", /host/],
    ["host;id", /host/],
    ["$(id)@host", /user/],
    ["[::1", /unclosed/],
    ["us er@host", /user/],
  ])("%p is refused", (conn, why) => {
    expect(() => parseConnection(conn)).toThrow(why);
  });
});

describe("sshTargetArgs", () => {
  test.each([
    [{ host: "beefy" }, ["beefy"]],
    [{ host: "h", user: "u", port: 2222 }, ["-p", "2222", "-l", "u", "h"]],
    [{ host: "::1", port: 22 }, ["-p", "22", "::1"]],
  ])("%p", (t, args) => {
    expect(sshTargetArgs(t)).toEqual(args);
  });
});

describe("defaultWorkerName", () => {
  test.each([
    [{ host: "build-1.lan", user: "me" }, "build-1.lan"],
    [{ host: "::1" }, "1"],
    [{ host: "fe80::1%eth0" }, "fe80-1-eth0"],
  ])("%p", (t, name) => {
    expect(defaultWorkerName(t)).toBe(name);
  });
});
