import { describe, expect, test } from "bun:test";
import { parseSshConfigDump, sshCommandArgv } from "../src/ssh/resolve.ts";

const dump = (extra: string) =>
  `user bob\nhostname 10.0.0.5\nport 2222\nidentityfile ~/.ssh/id_rsa\nidentityfile /keys/k\nuserknownhostsfile ~/.ssh/known_hosts ~/.ssh/known_hosts2\nglobalknownhostsfile /etc/ssh/ssh_known_hosts\n${extra}`;

describe("parseSshConfigDump", () => {
  test("reads what a connection needs, with ~ expanded", () => {
    expect(parseSshConfigDump(dump("stricthostkeychecking true\n"), {}, "/home/me")).toEqual({
      hostname: "10.0.0.5",
      user: "bob",
      port: 2222,
      identityFiles: ["/home/me/.ssh/id_rsa", "/keys/k"],
      identityAgent: undefined,
      identitiesOnly: false,
      knownHostsFiles: ["/home/me/.ssh/known_hosts", "/home/me/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts"],
      strictHostKeyChecking: "yes",
      hashKnownHosts: false,
    });
  });
  test.each([
    ["", { SSH_AUTH_SOCK: "/run/agent" }, "/run/agent"],
    ["identityagent none\n", { SSH_AUTH_SOCK: "/run/agent" }, undefined],
    ["identityagent SSH_AUTH_SOCK\n", { SSH_AUTH_SOCK: "/run/agent" }, "/run/agent"],
    ["identityagent $MY_SOCK\n", { MY_SOCK: "/run/mine" }, "/run/mine"],
    ["identityagent ~/agent.sock\n", {}, "/home/me/agent.sock"],
  ])("identityagent %p with %p is %p", (extra, env, agent) => {
    expect(parseSshConfigDump(dump(extra), env, "/home/me").identityAgent).toBe(agent);
  });
  test.each([
    ["stricthostkeychecking false\n", "no"],
    ["stricthostkeychecking accept-new\n", "accept-new"],
    ["stricthostkeychecking ask\n", "ask"],
    ["", "ask"],
  ])("%p is %p", (extra, strict) => {
    expect(parseSshConfigDump(dump(extra), {}).strictHostKeyChecking).toBe(strict as never);
  });
  test("proxies, alias and timeout", () => {
    const s = parseSshConfigDump(
      dump("proxyjump jump.lan\nhostkeyalias box\nconnecttimeout 5\nproxycommand none\n"),
      {},
    );
    expect(s).toMatchObject({ proxyJump: "jump.lan", hostKeyAlias: "box", connectTimeoutS: 5 });
    expect(s.proxyCommand).toBeUndefined();
  });
});

describe("sshCommandArgv", () => {
  test("plain ssh runs directly", () => {
    expect(sshCommandArgv(undefined, ["-G", "h"])).toEqual(["ssh", "-G", "h"]);
  });
  test.each([
    ["ssh", ["ssh", "-G", "h"]],
    ["ssh -F /etc/p/ssh_config", ["ssh", "-F", "/etc/p/ssh_config", "-G", "h"]],
    ["  /opt/ssh-9.8/bin/ssh   -o User=ci ", ["/opt/ssh-9.8/bin/ssh", "-o", "User=ci", "-G", "h"]],
    ["ssh -F ~/cfg", ["sh", "-c", 'ssh -F ~/cfg "$@"', "ssh", "-G", "h"]],
    ["ssh -F $HOME/cfg", ["sh", "-c", 'ssh -F $HOME/cfg "$@"', "ssh", "-G", "h"]],
    ["ssh -F 'a b'", ["sh", "-c", `ssh -F 'a b' "$@"`, "ssh", "-G", "h"]],
    ["LANG=C ssh", ["sh", "-c", 'LANG=C ssh "$@"', "ssh", "-G", "h"]],
    ["ssh -i key*", ["sh", "-c", 'ssh -i key* "$@"', "ssh", "-G", "h"]],
  ])("%p runs as %p", (command, argv) => {
    expect(sshCommandArgv(command, ["-G", "h"])).toEqual(argv);
  });
  test("a custom command keeps its own quoting and receives the arguments intact", () => {
    const argv = sshCommandArgv(`printf '[%s]' -F "/my dir/cfg"`, ["-G", "a b"]);
    expect(Bun.spawnSync(argv).stdout.toString()).toBe("[-F][/my dir/cfg][-G][a b]");
  });
});
