import { describe, expect, test } from "bun:test";
import { bridgeRsh, RSH_ARG, remoteCommand } from "../src/lib/rsh.ts";

describe("rsync's remote shell over p's connection", () => {
  test.each([
    [["host", "rsync", "--server", "-e.Lsf", "."], "rsync --server -e.Lsf ."],
    [["-l", "me", "host", "sh -c 'x'", "--server"], "sh -c 'x' --server"],
    [["-oBatchMode=yes", "-p", "2222", "host", "true"], "true"],
    [["host"], ""],
  ])("ssh's arguments %p run %p", (args, command) => {
    expect(remoteCommand(args)).toBe(command);
  });

  test("-e names this p and the socket; a path with a space is quoted, one rsync cannot say is refused", () => {
    const rsh = bridgeRsh("/tmp/p-ssh-0/bX/s");
    expect(rsh?.endsWith(` ${RSH_ARG} /tmp/p-ssh-0/bX/s`)).toBe(true);
    expect(bridgeRsh("/tmp/a b/s")?.endsWith(` ${RSH_ARG} "/tmp/a b/s"`)).toBe(true);
    expect(bridgeRsh("/tmp/it's/s")).toBeUndefined();
  });
});
