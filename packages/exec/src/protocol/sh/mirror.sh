# shellcheck shell=sh
# mirror.sh MIRROR WORKDIR RSYNC-ARGS...
# The worker side of a sync, run as rsync's remote command under the mirror's lock, so
# that two jobs from one client directory never mix their trees:
# 1. rsync brings MIRROR (the client directory as last synced) up to date;
# 2. the job's WORKDIR is made from the spare (a pristine copy of the mirror made while
#    the previous job ran): a local rsync brings it level with the mirror, touching only
#    what changed, and it is renamed into place;
# 3. the next spare is copied in the background, which holds the lock until it is ready.
# With no spare (a first run), the job needs no copy made first: the mirror itself is
# renamed into the work dir, and the background makes the mirror again out of a copy of
# the work dir, keeping only the files the job has not touched (their ctime, which no
# process can set, is not newer than a mark made before the job could start), then the
# spare. Where find lacks -cnewer, the mirror is copied to the work dir first instead.
# A work dir only ever appears complete, and no job can change the mirror, the spare or
# another job's files.
mirror=$1 work=$2
shift 2
spare=$mirror$P_SPARE
abs "$mirror"
# shellcheck disable=SC2154 # set by abs
lock=$abs$P_LOCK
mkdir -p "${mirror%/*}" "${work%/*}" || exit 12
exec 9>>"$lock"
if command -v flock >/dev/null; then flock 9; fi
# the lock's mtime is the mirror's last use (see sweep)
touch "$lock"
rsync "$@" || exit

copy() {
  cp -a --reflink=auto "$1/." "$2" 2>/dev/null || {
    rm -rf "$2"
    cp -a "$1/." "$2"
  }
}

make_spare() {
  rm -rf "$spare$P_PART"
  { copy "$mirror" "$spare$P_PART" && mv "$spare$P_PART" "$spare"; } || rm -rf "$spare$P_PART"
}

# every untouched file is read once, then kept by a hard link out of the full copy
refill_mirror() {
  rm -rf "$mirror$P_PART" "$mirror$P_KEEP"
  copy "$work" "$mirror$P_PART" &&
    (cd "$work" && find . ! -type d ! -cnewer "$lock" -print0) >"$mirror$P_KEEP" &&
    rsync -a --from0 --files-from="$mirror$P_KEEP" --link-dest="$abs$P_PART" "$mirror$P_PART/" "$mirror/"
  refill_status=$?
  rm -rf "$mirror$P_PART" "$mirror$P_KEEP"
  return $refill_status
}

refill_then_spare() {
  refill_mirror && make_spare
}

# run a function after this script has exited, still holding the lock (fd 9)
in_background() {
  ("$@") </dev/null >/dev/null 2>&1 &
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

rm -rf "$work$P_PART"
if [ -d "$spare" ] && rsync -a --delete --modify-window=-1 "$mirror/" "$spare/" && mv "$spare" "$work"; then
  in_background make_spare
  exit 0
fi
rm -rf "$spare"
if find "$lock" -cnewer "$lock" >/dev/null 2>&1 && touch "$lock" && clock_ticked; then
  mv "$mirror" "$work" || exit 11
  in_background refill_then_spare
  exit 0
fi
if ! { copy "$mirror" "$work$P_PART" && mv "$work$P_PART" "$work"; }; then
  rm -rf "$work$P_PART"
  exit 11
fi
in_background make_spare
