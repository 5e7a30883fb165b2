# shellcheck shell=sh
# mirror.sh MIRROR WORKDIR FAMILY SEED EXPECT NEXT FOLLOWS RSYNC-ARGS...
# The worker side of a sync, run as rsync's remote command under the mirror's lock, so
# that two jobs from one client directory never mix their trees:
# 1. rsync brings MIRROR (the client directory as last synced) up to date;
# 2. the job's WORKDIR is made from the spare (a pristine copy of the mirror made while
#    the previous job ran): what rsync logged it changed in the mirror since the spare was
#    made is copied into the spare (or deleted from it), and it is renamed into place. The
#    work is the change's, not the tree's. Where a directory was made or changed, or after
#    a sync that never finished (its log may lack a change), a local rsync of the whole
#    mirror levels the spare instead;
# 3. the next spare is copied in the background, once the job has started and, for up
#    to 2 s, run alone: a short job ends, and its client with it, without the copy
#    beside them. The lock is let go meanwhile (a sync that comes then finds no spare),
#    and held while the copy is made; a sync that comes then stops the copy (its priority
#    is the lowest: on a busy worker it might not end before the jobs do) and completes
#    what it made itself. It stops a refill of the mirror (below) too, and refills it
#    itself, then leaves the mirror where it is.
# With no spare (a first run), the job needs no copy made first: the mirror itself is
# renamed into the work dir, and the background makes the mirror again out of a copy of
# the work dir, keeping only the files the job has not touched (their ctime, which no
# process can set, is not newer than a mark made before the job could start), then the
# spare. Where find lacks -cnewer, the mirror is copied to the work dir first instead, as
# it is where FOLLOWS is yes: another sync of the same tree into another job's work dir
# comes at once (a group's), which then finds the mirror as this one left it (a quick sync
# of nothing changed, a copy, and a spare made meanwhile for the one after), not a mirror
# to make again twice over (its copy, then its spare's) before it can start. The group's
# next jobs on this worker then sync with FOLLOWS=copy:N: nothing is sent, and each work dir
# is copied from the mirror at once, beside the others (see below).
# A first sync from a new checkout of a repository that has a mirror here already (the same
# FAMILY: the same client user and repository; - for none) starts from that mirror's spare,
# which becomes this one's mirror (one rename: nothing copied), and rsync keeps of it only
# what is the same by checksum: only what differs crosses the network, and only that is
# written. With no spare there (or its copy still being made, which it stops, as above),
# rsync takes what it can from that mirror (--copy-dest).
# Only with SEED=yes, which the client says when it has rsync compare files by checksum.
# Until such a sync has finished, its mark (.syncing, saying "seeded") says the mirror holds
# files no checksum has vouched for yet: a later sync that finds it starts with no mirror.
# A sync that ends well leaves the mirror its mark, NEXT (.token; - for none). A sync of
# only what changed since the sync that left EXPECT runs only while the mirror holds that
# mark: else it says p-mirror-stale and exits 13, having done nothing, and the client
# syncs the whole tree. The mark goes as a sync starts and whenever the mirror is moved
# (then it says p-mirror-moved).
# A work dir only ever appears complete, and no job can change the mirror, the spare or
# another job's files.
mirror=$1 work=$2 family=$3 seed_ok=$4 expect=$5 next=$6 follows=$7
shift 7
spare=$mirror$P_SPARE
abs "$mirror"
# shellcheck disable=SC2154 # set by abs
lock=$abs$P_LOCK
[ -d "${mirror%/*}" ] && [ -d "${work%/*}" ] || mkdir -p "${mirror%/*}" "${work%/*}" || exit 12

# waited CMD...: run CMD (a program) as a process of its own, and wait for it. In the
# background (bg_self: see in_background), marked while it runs ($here$P_BACKGROUND: the
# background shell's pid and when it started, CMD's pid, what it is part of (bg_what:
# spare, the next spare's copy; refill, the mirror made again out of a job's work dir)
# and that work dir), for a sync that comes meanwhile to stop (give_way)
waited() {
  "$@" 9>&- &
  waited_pid=$!
  if [ -n "$bg_self" ]; then
    proc_start "$bg_self"
    # shellcheck disable=SC2154 # set by proc_start
    printf '%s %s %s %s %s\n' "$bg_self" "$proc_start" "$waited_pid" "$bg_what" "$work" >"$here$P_BACKGROUND"
  fi
  wait "$waited_pid"
  waited_status=$?
  [ -z "$bg_self" ] || rm -f "$here$P_BACKGROUND"
  return $waited_status
}

# copy TREE DEST: a copy of TREE, made DEST (cloned where the file system can). A cp that
# knows no --reflink makes nothing, and copies again without it; one that made part of
# the copy failed on a file, as it would again: that part is left for the caller.
copy() {
  waited cp -a --reflink=auto "$1/." "$2" 2>/dev/null && return 0
  [ ! -e "$2" ] || return 1
  waited cp -a "$1/." "$2"
}

make_spare() {
  # the lock's mtime is the mirror's last use (see sweep); touched only here, once no
  # refill looks at it for its mark
  touch "$lock"
  rm_tree "$spare$P_PART" "$changes$P_PART"
  # (from here the changes log says what the mirror gains over this copy)
  : >"$changes"
  bg_what=spare
  { copy "$mirror" "$spare$P_PART" && mv "$spare$P_PART" "$spare"; } || rm_tree "$spare$P_PART"
}

# the paths (NUL-ended) of the files in the work dir the job has not touched: their ctime
# is not newer than the mark. (find's 1: a directory it could not read, which the job made
# so; what it holds is not listed, and so is sent again by the next sync.)
untouched() {
  # shellcheck disable=SC2016 # find's shell expands them
  waited sh -c 'cd "$1" && exec find . ! -type d ! -cnewer "$2" -print0 2>/dev/null' p-keep "$work" "$lock"
  [ "$waited_status" -le 1 ]
}

# the mirror made again out of the work dir it became: a copy of it, of which each file
# the job has not touched is kept (by a hard link out of the copy) if it is still
# untouched once the copy is made: then it did not change while it was copied either.
# Where the whole copy fails (a file the job made unreadable), the files the job has not
# touched are copied over what that copy made. (Only those, always, would leave the job's
# own files uncopied; but by a list, with rsync, they took twice cp's time for all of a
# work dir of 12,000 files and 450 MB, 300 of them the job's.)
refill_mirror() {
  bg_what=refill
  rm_tree "$mirror$P_PART" "$mirror$P_KEEP"
  if ! copy "$work" "$mirror$P_PART"; then
    # (a file gone since it was listed, before its copy or during it, 24, was touched:
    # the second list lacks it)
    untouched >"$mirror$P_KEEP" && {
      waited rsync -a --from0 --files-from="$mirror$P_KEEP" --ignore-missing-args "$work/" "$mirror$P_PART/"
      [ "$waited_status" -eq 0 ] || [ "$waited_status" -eq 24 ]
    }
  fi &&
    untouched >"$mirror$P_KEEP" &&
    waited rsync -a --from0 --files-from="$mirror$P_KEEP" --link-dest="$here$P_PART" "$mirror$P_PART/" "$mirror/"
  refill_status=$?
  rm_tree "$mirror$P_PART" "$mirror$P_KEEP"
  return $refill_status
}

refill_then_spare() {
  refill_mirror && make_spare
}

# the next spare, once the job synced for has started (its runner file is there, or it
# has ended, or it went to Slurm: 2 s at most) and then ended or run for 2 s (its runner
# holds that file locked while it lives); the lock is let go meanwhile, and a spare made
# by another sync by then is not made again
spare_later() {
  command -v flock >/dev/null || {
    make_spare
    return
  }
  later_job=$P_JOBS/${work##*/}
  exec 9>&-
  later_n=0
  while [ ! -f "$later_job/runner" ] && [ ! -f "$later_job/exitcode" ] && [ ! -f "$later_job/slurm" ] &&
    [ "$later_n" -lt 40 ]; do
    sleep 0.05
    later_n=$((later_n + 1))
  done
  [ ! -f "$later_job/runner" ] || flock -w 2 -s "$later_job/runner" true
  exec 9>>"$lock"
  flock 9
  [ -d "$spare" ] || [ ! -d "$mirror" ] || make_spare
}

# The paths rsync's log says changed, one per line behind its kind as it ends up: f (a
# file), L (a link), d (a directory), D or S (a device, a special file), x (deleted), p
# (a parent of one of those: its mtime changed with them). None under what is not a
# directory now. Fails on a name rsync had to escape.
changed_paths() {
  awk '
    { i = index($0, "] "); if (!i) next
      line = substr($0, i + 2); code = substr(line, 1, 11); name = substr(line, 13)
      if (code !~ /^([<>ch.][fdLDS]|[*]deleting)/ || name == "") next
      if (index(name, "\\#")) { bad = 1; exit }
      sub(/\/$/, "", name)
      if (name == "") name = "."
      # (a path deleted, then made again, is what it was made)
      if (code ~ /^[*]/) { dead[name] = 1; kind[name] = "x" }
      else { delete dead[name]; kind[name] = substr(code, 2, 1) }
      names[++n] = name
    }
    function parent(p, j) { j = match(p, /\/[^\/]*$/); return j ? substr(p, 1, j - 1) : "." }
    END {
      if (bad) exit 3
      for (k = 1; k <= n; k++) {
        name = names[k]; p = name; under = 0
        # (under what is no directory now: made when that was made, or deleted with it)
        while (p != ".") { p = parent(p); if ((p in kind) && kind[p] != "d") { under = 1; break } }
        if (under) continue
        if (!(name in seen)) { seen[name] = 1; print kind[name] " " name }
        p = parent(name)
        if (!(p in seen) && !(p in dead)) { seen[p] = 1; print "p " p }
      }
    }' "$changes"
}

# bring the spare level with the mirror by what the log says changed, when that is files
# and links edited, added or deleted (the everyday change): a few by hand, more by rsync,
# then their directories' mtimes. Fails (having done nothing, or part) for anything else:
# a directory made or changed, whose attributes rsync given a list would not set.
level_by_log() {
  log_file=$1
  log_n=0
  while IFS= read -r log_line; do
    case $log_line in
      "f "* | "L "* | "x "*) log_n=$((log_n + 1)) ;;
      "p "*) ;;
      *) return 1 ;;
    esac
  done <"$log_file"
  if [ "$log_n" -le 16 ]; then
    # what went, in one rm; what came, in one cp from the mirror (one that was a directory
    # in the spare and is not now fails it: the whole scan then levels)
    set --
    while IFS= read -r log_line; do
      case $log_line in
        "x "*) set -- "$@" "${spare:?}/${log_line#??}" ;;
      esac
    done <"$log_file"
    [ $# -eq 0 ] || rm_tree "$@" || return 1
    set --
    while IFS= read -r log_line; do
      case $log_line in
        "f "* | "L "*) set -- "$@" "${log_line#??}" ;;
      esac
    done <"$log_file"
    if [ $# -gt 0 ]; then
      (cd "$mirror" && exec cp -a --parents --remove-destination -- "$@" "$here$P_SPARE/") || return 1
    fi
  else
    grep -v '^p ' "$log_file" | cut -c3- | tr '\n' '\0' |
      rsync -a -I --force --no-implied-dirs --from0 --files-from=- --delete-missing-args "$mirror/" "$spare/" ||
      return 1
  fi
  while IFS= read -r log_line; do
    case $log_line in
      "p "*) touch -m -r "$mirror/${log_line#??}" "$spare/${log_line#??}" || return 1 ;;
    esac
  done <"$log_file"
}

# bring the spare level with the mirror: by the changes logged, or by a whole scan
level_spare() {
  if [ -z "$unsure" ] && [ -f "$changes" ] && changed_paths >"$changes$P_PART" &&
    level_by_log "$changes$P_PART"; then
    return 0
  fi
  rm -f "$changes$P_PART"
  rsync -a --delete --modify-window=-1 "$mirror/" "$spare/"
}

# run a function after this script has exited, still holding the lock (fd 9), at a low
# priority: the copies it makes give way to the jobs running beside them. Where Linux
# groups each session's processes for the scheduler (autogroup), a process's nice counts
# only within its group, which would then share the CPU evenly with a job's: the group's
# own nice is raised too (this sync's session holds nothing else by now; a write more than
# once in 100 ms by any user is refused, so it tries again)
in_background() {
  (
    rm -f "$syncing"
    # (its own pid: read from /proc by this subshell itself, with no process started)
    read -r bg_self _ 2>/dev/null </proc/self/stat || bg_self=$(exec sh -c 'echo $PPID')
    renice -n 10 -p "$bg_self" >/dev/null 2>&1
    if [ -w /proc/self/autogroup ]; then
      for _ in 1 2 3; do
        echo 19 2>/dev/null >/proc/self/autogroup && break
        sleep 0.1
      done
    fi
    command -v ionice >/dev/null && ionice -c 2 -n 7 -p "$bg_self" >/dev/null 2>&1
    "$@"
  ) </dev/null >/dev/null 2>&1 &
}

# after the mark, wait for the file system's clock to tick (ms, or a whole second on
# some), so that whatever the job does is newer than the mark
clock_ticked() {
  tick_n=0
  while [ "$tick_n" -lt 300 ]; do
    if touch "$lock$P_TICK" && [ -n "$(find "$lock$P_TICK" -newer "$lock")" ]; then
      rm -f "$lock$P_TICK"
      return 0
    fi
    sleep 0.01 2>/dev/null || sleep 1
    tick_n=$((tick_n + 1))
  done
  rm -f "$lock$P_TICK"
  return 1
}

# stop_background MIRROR [WHAT]: stop the background work on MIRROR where some runs (its
# mark: see waited), of kind WHAT only where it is given, its shell and its process still
# those that marked it: a sync never waits behind a copy made at the lowest priority,
# which a busy worker may not get to for as long as its jobs run. Both are killed outright
# (a starved process would be slow to end itself); the shell's end lets the lock go. Sets
# stopped to what was stopped (spare or refill; empty for nothing) and stopped_work to the
# work dir a refill made the mirror again out of. (Only where /proc tells whose child the
# process is: else the sync waits.)
stop_background() {
  stopped='' stopped_work=''
  stop_pid='' stop_start='' stop_child='' stop_what='' stop_work=''
  { read -r stop_pid stop_start stop_child stop_what stop_work; } 2>/dev/null <"$1$P_BACKGROUND" || return 0
  [ -n "$stop_work" ] && [ -r "/proc/$stop_pid/stat" ] && alive "$stop_pid" || return 0
  [ -z "${2:-}" ] || [ "$stop_what" = "$2" ] || return 0
  proc_start "$stop_pid"
  # shellcheck disable=SC2154 # set by proc_start
  [ "$proc_start" = "$stop_start" ] || return 0
  proc_start "$stop_child"
  # shellcheck disable=SC2154 # set by proc_start
  [ "$proc_parent" != "$stop_pid" ] || kill -KILL "$stop_child" 2>/dev/null
  kill -KILL "$stop_pid" 2>/dev/null || :
  stopped=$stop_what stopped_work=$stop_work
  rm -f "$1$P_BACKGROUND"
}

# give_way: this mirror's background work stopped (stop_background), and what it was
# kept: gave_way (spare or refill) and gave_work (the work dir of a refill). The sync
# does the rest itself.
give_way() {
  stop_background "$here"
  [ -z "$stopped" ] || gave_way=$stopped gave_work=$stopped_work
}

# lock_mirror -x|-s STOP...: the mirror's lock (fd 9), exclusive or shared. Held: by a
# sync, or by background work, which STOP makes give way (looked at again every 0.5 s
# while this waits: the background may only just be taking the lock)
lock_mirror() {
  lock_how=$1
  shift
  flock -n "$lock_how" 9 && return 0
  until "$@"; flock -E 75 -w 0.5 "$lock_how" 9; do
    [ $? -eq 75 ] || {
      flock "$lock_how" 9
      return
    }
  done
}

# held_mark: sets held to the mark the mirror holds (empty for none)
held_mark() {
  held=
  [ ! -f "$token" ] || IFS= read -r held <"$token" || :
}

# work_from_mirror: the job's work dir made a copy of the mirror; else exit 11
work_from_mirror() {
  if ! { copy "$mirror" "$work$P_PART" && mv "$work$P_PART" "$work"; }; then
    rm_tree "$work$P_PART"
    exit 11
  fi
}

here=$abs
bg_self='' bg_what='' gave_way='' gave_work=''
token=$here$P_TOKEN
changes=$here$P_CHANGES

# FOLLOWS=copy: the mirror already holds the tree (EXPECT, the mark the sync before in the
# same group left), and the job's work dir is copied from it under a shared lock, so that
# the group's other jobs on this worker are copied at the same time, and no other sync
# changes the mirror meanwhile. (rsync sends nothing, but for a file being written as the
# client walked the tree: sent again only if it changed, and looked at again by the next
# sync, as such a file always is.) A copy of the next spare that holds the lock gives way
# (it is made later); a mirror that lacks the mark EXPECT says p-mirror-stale. FOLLOWS is
# copy:N, the group's Nth copy here (from 0): no more are made at once than the worker has
# cores (a copy is mostly the kernel's work), each after the one as many places before it.
copy_n=
case $follows in
  copy:*) copy_n=${follows#copy:} ;;
esac
if [ -n "$copy_n" ]; then
  command -v flock >/dev/null || {
    echo p-mirror-stale >&2
    exit 13
  }
  exec 9>>"$lock"
  lock_mirror -s stop_background "$here" spare
  held_mark
  if [ "$held" != "$expect" ] || [ ! -d "$mirror" ]; then
    echo p-mirror-stale >&2
    exit 13
  fi
  rsync --log-file="$changes" --log-file-format='%i %n' "$@" || exit
  [ ! -e "$work$P_PART" ] || rm_tree "$work$P_PART"
  cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null) || cores=1
  exec 8>>"$here$P_COPY$((copy_n % ${cores:-1}))"
  flock 8
  work_from_mirror
  exit 0
fi

exec 9>>"$lock"
! command -v flock >/dev/null || lock_mirror -x give_way
syncing=$here$P_SYNCING
# a refill stopped (give_way): the mirror made again here, at this sync's priority, out
# of the same work dir (gone: the sync is a whole one, into what there is)
if [ "$gave_way" = refill ] && [ -d "$gave_work" ]; then
  sync_work=$work work=$gave_work
  # (what a copy fails on is no concern of the job's: it goes nowhere)
  refill_mirror 2>/dev/null || :
  work=$sync_work
fi
unsure=
if [ -e "$syncing" ]; then
  unsure=1
  # (a seeded sync that never finished: what it left was never vouched for)
  if [ -s "$syncing" ]; then rm_tree "$here$P_TOKEN" "$mirror" "$spare" "$spare$P_PART" && : >"$syncing"; fi
fi

# seed: the mirror of the same family used last, held still (its lock) while rsync reads it
seed=
if [ "$seed_ok" = yes ] && [ "$family" != - ] && [ ! -d "$mirror" ] && command -v flock >/dev/null; then
  # (mirrors are named by hashes: ls's list of them, newest first, splits safely)
  # shellcheck disable=SC2045
  for seed_family in $(ls -t "${mirror%/*}"/*"$P_FAMILY" 2>/dev/null); do
    seed_dir=${seed_family%"$P_FAMILY"}
    abs "$seed_dir"
    if [ "$abs" = "$here" ] || [ ! -d "$seed_dir" ] || [ "$(cat "$seed_family")" != "$family" ]; then
      continue
    fi
    exec 8>>"$seed_dir$P_LOCK"
    # (held by the copy of that mirror's next spare: stopped, as this mirror's own would
    # be, and left for that mirror's next sync to complete; anything else is waited for)
    if { flock -n 8 || { stop_background "$seed_dir" spare && flock -w 10 8; }; } && [ -d "$seed_dir" ]; then
      echo seeded >"$syncing"
      if [ -d "$seed_dir$P_SPARE" ] && mv "$seed_dir$P_SPARE" "$mirror"; then
        exec 8>&-
      else
        seed=$abs
      fi
      break
    fi
    exec 8>&-
  done
  abs=$here
fi
if [ "$expect" != - ]; then
  held_mark
  # (only where flock holds off every other sync of this mirror meanwhile)
  if [ "$held" != "$expect" ] || [ -n "$unsure" ] || [ -n "$seed" ] || [ ! -d "$mirror" ] ||
    ! command -v flock >/dev/null; then
    echo p-mirror-stale >&2
    exit 13
  fi
fi
[ ! -s "$token" ] || : >"$token"
[ -s "$syncing" ] || : >"$syncing"
rsync --log-file="$changes" --log-file-format='%i %n' ${seed:+"--copy-dest=$seed"} "$@" || exit
[ -z "$seed" ] || exec 8>&-
[ "$next" = - ] || echo "$next" >"$token"
# (what a work dir half made before a crash left; the mark that rsync runs goes in the
# background, which holds the lock as it starts)
[ ! -e "$work$P_PART" ] || rm_tree "$work$P_PART"
[ "$family" = - ] || echo "$family" >"$here$P_FAMILY"

if [ -d "$spare" ] && level_spare && mv "$spare" "$work"; then
  in_background spare_later
  exit 0
fi
rm_tree "$spare"
# a spare whose copy gave way to this sync (give_way): completed here, at this sync's own
# priority, by what it lacks
if [ -d "$spare$P_PART" ] && rsync -a --delete --modify-window=-1 "$mirror/" "$spare$P_PART/" &&
  mv "$spare$P_PART" "$work"; then
  in_background spare_later
  exit 0
fi
rm_tree "$spare$P_PART"
if [ "$follows" != yes ] && [ -z "$gave_way" ] && find "$lock" -cnewer "$lock" >/dev/null 2>&1 &&
  touch "$lock" && clock_ticked; then
  : >"$token"
  mv "$mirror" "$work" || exit 11
  echo p-mirror-moved >&2
  in_background refill_then_spare
  exit 0
fi
work_from_mirror
in_background make_spare
