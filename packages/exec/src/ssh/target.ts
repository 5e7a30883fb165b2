import { PError, problem } from "../errors.ts";

/** Where a worker lives: what `ssh [-p port] [-l user] host` needs. `host` may be an ssh config alias. */
export interface Target {
  host: string;
  user?: string;
  port?: number;
}

const bad = (conn: string, why: string) =>
  new PError(
    "invalid_argument",
    problem(
      `connection string ${JSON.stringify(conn)} is not valid`,
      why,
      "use user@host, user@host:port, [v6addr]:port or an ssh config alias",
    ),
  );

const HOST = /^[^\s@/'"`$\\;&|<>()*?[\]{}!#-][^\s@/'"`$\\;&|<>()*?[\]{}!#]*$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;

/**
 * Parse `user@host`, `user@host:port`, `host:port`, `[v6]:port`, `user@[v6]`, a bare IPv6
 * address, an `ssh://` URL or an ssh config alias. OpenSSH itself accepts none of the
 * `:port` forms, so they are split here into what its flags take.
 */
export function parseConnection(conn: string): Target {
  let rest = conn.trim();
  if (rest === "") throw bad(conn, "it is empty");
  if (rest.startsWith("ssh://")) rest = rest.slice(6).replace(/\/$/, "");
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) throw bad(conn, `user ${JSON.stringify(user)} has characters a unix user name cannot`);
  }
  let host = rest;
  let portText: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.%a-zA-Z]+)\](?::(.*))?$/.exec(rest);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
  } else if (rest.startsWith("[")) {
    throw bad(conn, "unclosed [ around an IPv6 address");
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    [host, portText] = rest.split(":") as [string, string];
  }
  if (host === "") throw bad(conn, "the host is empty");
  if (!v6 && !HOST.test(host)) throw bad(conn, `host ${JSON.stringify(host)} has characters a host name cannot`);
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
      throw bad(conn, `port ${JSON.stringify(portText)} is not 1-65535`);
  }
  return { host, ...(user !== undefined && { user }), ...(port !== undefined && { port }) };
}

/** OpenSSH flags and destination for a target: `[-p port] [-l user] host`. */
export function sshTargetArgs(t: Target): string[] {
  return [...(t.port ? ["-p", String(t.port)] : []), ...(t.user ? ["-l", t.user] : []), t.host];
}

/** A worker name made from a connection's host: `user@build-1.lan:2222` becomes `build-1.lan`. */
export function defaultWorkerName(t: Target): string {
  return t.host.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+|-+$/g, "") || "worker";
}
