import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { layout, onWorkerPath, p, startWorkers, type Workers } from "./_harness.ts";

// real sshd, real rsync, real jobs: slower than unit tests
setDefaultTimeout(30_000);

let w: Workers;
let env: Record<string, string>;
const config = () => readFileSync(join(env.XDG_CONFIG_HOME!, "p", "config.yaml"), "utf8");
const workdirs = (user: string) =>
  existsSync(onWorkerPath(user, layout.WORKDIRS_DIR)) ? readdirSync(onWorkerPath(user, layout.WORKDIRS_DIR)).length : 0;

beforeAll(() => {
  w = startWorkers();
  env = w.env;
});
afterAll(() => w.stop());

describe("p worker register", () => {
  test("user@host:port: named after the host, first one is the default", async () => {
    const r = await p(["worker", "register", `p-w1@127.0.0.1:${w.port}`], { env });
    expect(r).toMatchObject({
      code: 0,
      stdout: `Registered worker 127.0.0.1 (p-w1@127.0.0.1:${w.port}) as the default\n`,
    });
    expect((await p(["--", "whoami"], { env })).stdout).toBe("p-w1\n");
  });

  test("an ssh config alias, with -n", async () => {
    const r = await p(["worker", "register", "p-w2", "-n", "two"], { env });
    expect(r).toMatchObject({ code: 0, stdout: "Registered worker two (p-w2)\n" });
    expect((await p(["two", "--", "whoami"], { env })).stdout).toBe("p-w2\n");
  });

  test("[v6addr]:port: an unknown host key is shown and recorded, then used by ssh and rsync alike", async () => {
    if (!readFileSync("/proc/net/if_inet6", "utf8").includes(" lo\n")) return; // no IPv6 loopback here
    const before = readFileSync(join(w.dir, "known_hosts"), "utf8");
    const r = await p(["worker", "register", `p-w2@[::1]:${w.port}`, "-n", "v6"], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Recorded the host key of \[::1\]:\d+ \(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\)/);
    const after = readFileSync(join(w.dir, "known_hosts"), "utf8");
    expect(after.startsWith(before)).toBe(true);
    expect(after.slice(before.length)).toMatch(new RegExp(`^\\[::1\\]:${w.port} ssh-ed25519 `));
    const run = await p(["v6", "--", "whoami; ls"], { env, cwd: w.dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("p-w2\n");
    expect(run.stdout).toContain("known_hosts");
  });

  test.each([
    [["worker", "register", "me@host:99999"], /port "99999" is not 1-65535/],
    [["worker", "register", "-oProxyCommand=evil"], /unknown option|not valid/],
    [["worker", "register", "me@host;id"], /host "host;id" has characters/],
    [["worker", "register", "p-w1", "-n", "a b"], /worker name "a b" is not valid/],
    [["worker", "register", "p-w1", "-n", "../x"], /worker name "..\/x" is not valid/],
    [["worker", "register", "p-w1", "-n", "two"], /a worker named two already exists/],
    [["worker", "register"], /usage: p worker register/],
  ])("%p is refused in one line, config unchanged", async (args, why) => {
    const before = config();
    const r = await p(args, { env });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(why);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(config()).toBe(before);
  });

  test("an unreachable host is said so, with ssh's reason", async () => {
    const r = await p(["worker", "register", "p-w1@127.0.0.1:1", "-n", "dead"], { env });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/worker dead is unreachable \(connect to host 127\.0\.0\.1 port 1: Connection refused\)/);
  });
});

describe("p worker ls / default / rm", () => {
  test("ls lists names, connections and the default; --json for scripts", async () => {
    const r = await p(["worker", "ls"], { env });
    expect(r.stdout.split("\n")[0]).toMatch(/^NAME\s+KIND\s+CONNECTION\s+DEFAULT$/);
    expect(r.stdout).toMatch(/127\.0\.0\.1\s+ssh\s+p-w1@127\.0\.0\.1:\d+\s+\*/);
    const json = JSON.parse((await p(["worker", "ls", "--json"], { env })).stdout);
    expect(json).toContainEqual({ name: "two", kind: "ssh", connection: "p-w2", default: false });
    expect(json.filter((x: { default: boolean }) => x.default)).toHaveLength(1);
  });

  test("default switches where p -- goes", async () => {
    expect((await p(["worker", "default", "two"], { env })).code).toBe(0);
    expect((await p(["--", "whoami"], { env })).stdout).toBe("p-w2\n");
    expect((await p(["worker", "default", "nope"], { env })).code).toBe(64);
  });

  test("rm refuses a worker with running jobs, then removes it and moves the default", async () => {
    const id = (await p(["-d", "--", "sleep 30"], { env })).stdout.trim();
    const refused = await p(["worker", "rm", "two"], { env });
    expect(refused.code).toBe(64);
    expect(refused.stderr).toContain(id.slice(0, 8));
    expect((await p(["stop", id], { env })).code).toBe(0);
    const r = await p(["worker", "rm", "two"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/the default is now 127\.0\.0\.1/);
    expect(config()).not.toContain("p-w2\n");
  });
});

describe("host keys", () => {
  const withKnownHosts = (text: string, strict = "yes") => {
    const dir = w.dir;
    const kh = join(dir, `kh-${Math.random().toString(36).slice(2)}`);
    writeFileSync(kh, text);
    const cfg = join(dir, `cfg-${Math.random().toString(36).slice(2)}`);
    writeFileSync(
      cfg,
      readFileSync(join(dir, "ssh_config"), "utf8")
        .replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${kh}`)
        .replace(/StrictHostKeyChecking .*/, `StrictHostKeyChecking ${strict}`),
    );
    return { ...env, P_SSH_COMMAND: `ssh -F ${cfg}` };
  };

  test("a changed host key is refused before anything is sent", async () => {
    const other = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(w.dir, "impostor")]);
    expect(other.exitCode).toBe(0);
    const impostor = readFileSync(join(w.dir, "impostor.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    const e = withKnownHosts(`[127.0.0.1]:${w.port} ${impostor}\n`);
    const before = workdirs("p-w1");
    const r = await p(["--", "echo should not run"], { env: e });
    expect(r.code).toBe(255);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/host key of \[127\.0\.0\.1\]:\d+ has CHANGED/);
    expect(r.stderr).toMatch(/ssh-keygen -R/);
    expect(workdirs("p-w1")).toBe(before);
  });

  test("an unknown host is refused outside register when ssh is strict", async () => {
    const r = await p(["--", "true"], { env: withKnownHosts("") });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/host key of \[127\.0\.0\.1\]:\d+ is not known/);
  });
});
