import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { p, scratch, spawnP, startWorkers, type Workers, waitFor } from "./_harness.ts";

// real sshd, real rsync, real jobs: slower than unit tests
setDefaultTimeout(30_000);

let w: Workers;
let agentPid = 0;
let env: Record<string, string>;

/** An ssh config with extra hosts, falling back to the workers' own config. */
function configWith(text: string): Record<string, string> {
  const file = join(w.dir, `ssh_config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${text}\nInclude ${join(w.dir, "ssh_config")}\n`);
  return { ...w.env, P_SSH_COMMAND: `ssh -F ${file}` };
}

beforeAll(() => {
  w = startWorkers();
  const sock = join(w.dir, "agent.sock");
  const agent = Bun.spawnSync(["ssh-agent", "-a", sock]);
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout.toString())![1]);
  expect(Bun.spawnSync(["ssh-add", "-q", join(w.dir, "client_key")], { env: { SSH_AUTH_SOCK: sock } }).exitCode).toBe(
    0,
  );
  // keys only in the agent: no identity file is named for this host
  env = configWith(`Host agent-w1
  HostName 127.0.0.1
  Port ${w.port}
  User p-w1
  IdentityAgent ${sock}
  IdentityFile ${join(w.dir, "no-such-key")}
  IdentitiesOnly no
  UserKnownHostsFile ${join(w.dir, "known_hosts")}
  StrictHostKeyChecking yes
  BatchMode yes

Host jumped
  HostName 127.0.0.1
  Port ${w.port}
  User p-w1
  ProxyCommand ssh -F ${join(w.dir, "ssh_config")} -W %h:%p p-w2`);
});
afterAll(() => {
  if (agentPid) process.kill(agentPid);
  w.stop();
});

describe("SSH as the user has it set up", () => {
  test("keys from ssh-agent, named by the ssh config alias, for both the sync and the job", async () => {
    expect((await p(["worker", "register", "agent-w1"], { env })).code).toBe(0);
    const cwd = scratch("agent");
    writeFileSync(join(cwd, "synced.txt"), "via agent");
    const r = await p(["agent-w1", "--", "whoami; cat synced.txt"], { env, cwd });
    expect(r).toMatchObject({ code: 0, stdout: "p-w1\nvia agent" });
  });

  test("a host reached through a ProxyCommand (an ssh -W hop)", async () => {
    expect((await p(["worker", "register", "jumped"], { env })).code).toBe(0);
    const cwd = scratch("jump");
    writeFileSync(join(cwd, "synced.txt"), "via jump");
    const r = await p(["jumped", "--", "whoami; cat synced.txt"], { env, cwd });
    expect(r).toMatchObject({ code: 0, stdout: "p-w1\nvia jump" });
  });

  test("without the agent's key, authentication fails with a clear error", async () => {
    const r = await p(["agent-w1", "--", "true"], {
      env: { ...env, P_SSH_COMMAND: `${env.P_SSH_COMMAND} -o IdentityAgent=none` },
    });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/ssh authentication as p-w1 to 127\.0\.0\.1 port \d+ failed/);
  });

  test("a connection begins with what ssh -G said last time; where it now says otherwise, p goes where it says", async () => {
    const config = join(w.dir, "ssh_config-moving");
    const pointAt = (user: string) =>
      writeFileSync(
        config,
        `Host moving\n  HostName 127.0.0.1\n  Port ${w.port}\n  User ${user}\nInclude ${join(w.dir, "ssh_config")}\n`,
      );
    // an ssh whose -G takes its time, and says while it does
    const resolving = join(w.dir, "resolving");
    const ssh = join(w.dir, "slow-resolve");
    writeFileSync(
      ssh,
      `#!/bin/sh\ncase " $* " in *" -G "*) : >${resolving}; sleep 1.5; rm -f ${resolving} ;; esac\nexec ssh -F ${config} "$@"\n`,
      { mode: 0o755 },
    );
    const moving = { ...w.env, P_SSH_COMMAND: ssh };
    pointAt("p-w1");
    expect((await p(["worker", "register", "moving"], { env: moving })).code).toBe(0);
    // known: p's TCP connection is up while ssh -G still resolves
    const run = spawnP(["moving", "-n", "--", "whoami"], { env: moving });
    await waitFor(() => existsSync(resolving));
    const connected = () =>
      Bun.spawnSync(["ss", "-Htnp", "state", "established", `( dport = :${w.port} )`])
        .stdout.toString()
        .includes(`pid=${run.pid},`);
    await waitFor(() => connected() || !existsSync(resolving), 5000);
    expect(existsSync(resolving)).toBe(true);
    expect(await new Response(run.stdout).text()).toBe("p-w1\n");
    expect(await run.exited).toBe(0);
    // moved: the handshake begun with the old settings gives way to ssh -G's word
    pointAt("p-w2");
    expect(await p(["moving", "-n", "--", "whoami"], { env: moving })).toMatchObject({ code: 0, stdout: "p-w2\n" });
    // a cache that cannot be read only costs the wait
    writeFileSync(join(w.dir, "cache", "p", "ssh-resolved.json"), "{");
    expect(await p(["moving", "-n", "--", "whoami"], { env: moving })).toMatchObject({ code: 0, stdout: "p-w2\n" });
    expect((await p(["worker", "rm", "moving"], { env: moving })).code).toBe(0);
  });
});
