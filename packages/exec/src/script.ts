import { SshError } from "./errors.ts";
import { shq } from "./quote.ts";

/** What the worker needs to start a job. */
export interface LaunchSpec {
  id: string;
  /** The command line, run by the worker user's login shell. */
  command: string;
  /** The client's directory (display only). */
  cwd: string;
  /** The worker's name (display only). */
  worker: string;
  /**
   * Where the job runs, if not its own fresh work dir: an existing directory, absolute or
   * relative to the home directory.
   */
  dir?: string;
}

/**
 * Prefix of the line the follow script writes to stderr last:
 * `<exit code|unknown> <ended_at|-> <stopped|-> <log size>`. The size lets the client see
 * whether it has every byte: GNU tail --pid may quit with unread data when it lags behind
 * a job that has finished, so the client fetches the rest (see followScript).
 */
export const STATUS_MARK = "p-status ";

/**
 * The line the follow script writes to stderr first, once it has found the job: after a
 * launch, it tells the client the job has started, so a connection lost before it is said
 * to have been lost before the job could be confirmed, not while following it.
 */
export const FOLLOW_MARK = "p-follow";

export interface FollowStatus {
  exitCode: number | null;
  endedAt: number | null;
  /** Ended by `p stop`. */
  stopped: boolean;
  /** Size of the whole log, in bytes, when the status was read. */
  size: number;
}

/** Read the follow script's status line; undefined if `line` is not one. */
export function parseStatusLine(line: string): FollowStatus | undefined {
  const m = /^p-status (\d+|unknown) (\d+|-) (stopped|-) +(\d+)$/.exec(line.trim());
  if (!m) return undefined;
  return {
    exitCode: m[1] === "unknown" ? null : Number(m[1]),
    endedAt: m[2] === "-" ? null : Number(m[2]),
    stopped: m[3] === "stopped",
    size: Number(m[4]),
  };
}

/**
 * Shell helpers for worker-side scripts. A dead process that nobody has reaped yet (a
 * zombie: containers often run an init that reaps slowly) must not count as alive.
 */
export const ALIVE_FUNCTIONS = `alive() { kill -0 "$1" 2>/dev/null && ! ps -o stat= -p "$1" 2>/dev/null | grep -q '^Z'; }
group_alive() { ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }`;

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A job id is a lowercase UUID; anything else could name a path outside `~/.p`. */
export function assertJobId(id: string): string {
  if (!JOB_ID.test(id)) throw new SshError("invalid_argument", `job id ${JSON.stringify(id)} is not a UUID`);
  return id;
}

/** Worker paths, relative to the worker user's home (where ssh and rsync start). */
export const jobDir = (id: string) => `.p/jobs/${assertJobId(id)}`;
export const workDir = (id: string) => `.p/workdirs/${assertJobId(id)}`;
/** Where the worker keeps its mirrors of client directories (see planMirrorSync). */
export const MIRRORS_DIR = ".p/mirrors";

/**
 * The runner: started in a session of its own so it outlives the SSH connection. It starts
 * the job in another new session (so `stop` can signal the whole process group, and the
 * runner survives it), waits, and records the job's own exit status. Every file it writes
 * appears atomically (write, then rename) so a poller never reads half of one.
 */
const RUNNER = `j=$1
setsid "$2" -l -c "$3" >>"$j/output.log" 2>&1 </dev/null &
pid=$!
printf '%s\\n' "$pid" >"$j/.pid.tmp" && mv -f "$j/.pid.tmp" "$j/pid"
wait "$pid"
code=$?
date +%s >"$j/.ended_at.tmp" && mv -f "$j/.ended_at.tmp" "$j/ended_at"
printf '%s\\n' "$code" >"$j/.exitcode.tmp" && mv -f "$j/.exitcode.tmp" "$j/exitcode"`;

/**
 * The worker-side script that records a job and starts it detached. The work dir is
 * created if the sync did not (`--no-sync`). Prints nothing on success.
 */
export function launchScript(spec: LaunchSpec): string {
  const id = assertJobId(spec.id);
  const w = spec.dir === undefined ? `"$HOME/${workDir(id)}"` : spec.dir.startsWith("/") ? shq(spec.dir) : `"$HOME"/${shq(spec.dir)}`;
  const dir = spec.dir === undefined ? `mkdir -p "$w"` : `[ -d "$w" ] || { printf '%s\\n' ${shq(`no directory ${spec.dir} on the worker`)} >&2; exit 2; }`;
  return `set -e
um=$(umask)
umask 077
j="$HOME/${jobDir(id)}"
w=${w}
${dir}
mkdir -p "$j"
put() { printf '%s' "$2" >"$j/.$1.tmp" && mv -f "$j/.$1.tmp" "$j/$1"; }
put cmd ${shq(spec.command)}
put cwd ${shq(spec.cwd)}
put worker ${shq(spec.worker)}
put started_at "$(date +%s)"
: >"$j/output.log"
command -v setsid >/dev/null || { echo "setsid not found on the worker: install util-linux" >&2; exit 127; }
case "\${SHELL##*/}" in bash|zsh|ksh|mksh|dash|sh|ash|yash) sh=$SHELL ;; *) sh=/bin/sh ;; esac
cd "$w"
umask "$um"
P_JOB_ID=${id} setsid sh -c ${shq(RUNNER)} p-runner "$j" "$sh" ${shq(spec.command)} </dev/null >/dev/null 2>&1 &
printf '%s\\n' "$!" >"$j/.runner.tmp" && mv -f "$j/.runner.tmp" "$j/runner"
`;
}

/**
 * Stream a job's output from byte `offset` until the job ends (or, without `follow`, print
 * what it has written so far), then write the status line to stderr. When the client goes away (stdin closes), the tail is ended too.
 */
export function followScript(id: string, offset = 0, follow = true): string {
  const j = `"$HOME/${jobDir(id)}"`;
  const from = `+${Math.max(0, Math.floor(offset)) + 1}`;
  return `set +e
${ALIVE_FUNCTIONS}
j=${j}
[ -d "$j" ] || { echo "job ${id} is not on this worker" >&2; exit 3; }
r=$(cat "$j/runner" 2>/dev/null)
echo ${FOLLOW_MARK} >&2
if ${follow ? "" : "false && "}[ ! -f "$j/exitcode" ] && [ -n "$r" ] && alive "$r"; then
  exec 3<&0
  # tail stops once this watcher (our own child, reaped at once) sees the job end;
  # ps (a fork) only every 2 s, to catch a runner that died and was never reaped
  ( n=0; while [ ! -f "$j/exitcode" ] && kill -0 "$r" 2>/dev/null; do sleep 0.1; n=$((n + 1)); [ $((n % 20)) -ne 0 ] || alive "$r" || break; done ) </dev/null >/dev/null 2>&1 & w=$!
  tail -c ${from} -s 0.1 --pid="$w" -f "$j/output.log" & t=$!
  { cat >/dev/null; kill "$t" "$w"; } <&3 >/dev/null 2>&1 &
  wait "$t" 2>/dev/null
else
  tail -c ${from} "$j/output.log"
fi
printf '${STATUS_MARK}%s %s %s %s\\n' "$(cat "$j/exitcode" 2>/dev/null || echo unknown)" "$(cat "$j/ended_at" 2>/dev/null || echo -)" "$([ -f "$j/stopped" ] && echo stopped || echo -)" "$(wc -c <"$j/output.log")" >&2
`;
}

/** Wrap a script for `ssh host <command>`: the login shell may not be POSIX, so name sh. */
export function remoteSh(script: string): string {
  return `sh -c ${shq(script)}`;
}
