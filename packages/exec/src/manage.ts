import { ALIVE_FUNCTIONS, jobDir, MIRRORS_DIR } from "./script.ts";

/** What a worker says of a job. */
export type RemoteState =
  | { state: "running" }
  | { state: "exited"; exitCode: number; endedAt: number | null; stopped: boolean }
  | { state: "lost" } // the process is gone and left no exit code
  | { state: "gone" }; // no such job directory

/** One round trip: the state of each job, one line per id. */
export function statusScript(ids: readonly string[]): string {
  const dirs = ids.map((id) => `"$HOME/${jobDir(id)}"`).join(" ");
  return `${ALIVE_FUNCTIONS}
for j in ${dirs}; do
  id=\${j##*/}
  if [ ! -d "$j" ]; then echo "$id gone"
  elif [ -f "$j/exitcode" ]; then echo "$id exited $(cat "$j/exitcode") $(cat "$j/ended_at" 2>/dev/null || echo -) $([ -f "$j/stopped" ] && echo stopped || echo -)"
  elif r=$(cat "$j/runner" 2>/dev/null) && alive "$r"; then echo "$id running"
  else echo "$id lost"
  fi
done
`;
}

export function parseStatusReport(text: string): Map<string, RemoteState> {
  const states = new Map<string, RemoteState>();
  for (const line of text.split("\n")) {
    const [id, state, code, ended, stopped] = line.trim().split(" ");
    if (!id) continue;
    if (state === "running" || state === "lost" || state === "gone") states.set(id, { state });
    else if (state === "exited" && /^\d+$/.test(code ?? ""))
      states.set(id, { state, exitCode: Number(code), endedAt: /^\d+$/.test(ended ?? "") ? Number(ended) : null, stopped: stopped === "stopped" });
  }
  return states;
}

/**
 * End a job's whole process group: TERM, then KILL after `graceS` seconds. Marks the job
 * `stopped` first so the runner's exit code (143, 137) is read as a stop, not a crash.
 * Prints `finished` if it had already ended, `stopped` otherwise; exit 3 if unknown.
 */
export function stopScript(id: string, graceS = 10): string {
  return `${ALIVE_FUNCTIONS}
j="$HOME/${jobDir(id)}"
[ -d "$j" ] || exit 3
[ -f "$j/exitcode" ] && { echo finished; exit 0; }
i=0; while [ ! -f "$j/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
pid=$(cat "$j/pid" 2>/dev/null)
: >"$j/stopped"
if [ -n "$pid" ]; then
  # a job not yet in its own group (setsid still to come) is ended by its pid
  kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  i=0; while { group_alive "$pid" || alive "$pid"; } && [ $i -lt ${Math.round(graceS * 10)} ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
fi
i=0; while [ ! -f "$j/exitcode" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done
echo stopped
`;
}

/**
 * Each job's disk use (KiB of its job and work dirs), one `<id> <kib>` line per job; with
 * `remove`, the dirs are deleted after being measured.
 */
export function removeScript(ids: readonly string[], remove: boolean): string {
  const list = ids.map((id) => jobDir(id).split("/").pop()).join(" ");
  return `for id in ${list}; do
  set -- "$HOME/.p/jobs/$id" "$HOME/.p/workdirs/$id"
  kib=$(du -sk "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  ${remove ? 'rm -rf "$@" || exit 1\n  ' : ""}echo "$id $kib"
done
`;
}

export function parseSizes(text: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (\d+)$/.exec(line.trim());
    if (m) sizes.set(m[1]!, Number(m[2]) * 1024);
  }
  return sizes;
}

/**
 * What no job owns: work dirs a killed sync left half made (`<id>.part`, untouched for an
 * hour), and mirrors no sync has used for `days` days (with all that shares their name:
 * spare, lock, copies under way), skipped while a sync holds them. One `leftover <kib>
 * <path>` line each; with `remove`, they are deleted.
 */
export function sweepScript(days: number, remove: boolean): string {
  return `( cd "$HOME/.p" 2>/dev/null || exit 0
for d in workdirs/*.part; do
  [ -d "$d" ] && [ -n "$(find "$d" -maxdepth 0 -mmin +60)" ] || continue
  kib=$(du -sk "$d" | cut -f1)
  ${remove ? 'rm -rf "$d"; ' : ""}echo "leftover $kib .p/$d"
done
for l in ${MIRRORS_DIR.replace(/^\.p\//, "")}/*.lock; do
  [ -f "$l" ] && [ -n "$(find "$l" -maxdepth 0 -mtime +${Math.floor(days)})" ] || continue
  m=\${l%.lock}
  ( if command -v flock >/dev/null; then flock -n 9 || exit 0; fi
    kib=$(du -sk "$m" "$m".* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    ${remove ? 'rm -rf "$m" "$m".*; ' : ""}echo "leftover $kib .p/$m" ) 9>>"$l"
done )
`;
}

/** The sweep's report: each leftover path and its size in bytes. */
export function parseLeftovers(text: string): { path: string; bytes: number }[] {
  return [...text.matchAll(/^leftover (\d+) (.+)$/gm)].map((m) => ({ path: m[2]!, bytes: Number(m[1]) * 1024 }));
}
