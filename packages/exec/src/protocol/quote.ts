/**
 * POSIX single-quote one word for a remote shell. Everything between single quotes is
 * literal in sh, so the only character needing care is the quote itself: close, emit an
 * escaped quote, reopen. Every piece of user text that reaches a remote shell goes
 * through here.
 */
export function shq(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Quote an argv into one command line that a POSIX shell splits back into the same argv. */
export function shJoin(argv: readonly string[]): string {
  return argv.map(shq).join(" ");
}

/**
 * The command line a job runs. One argument is taken as a shell command line as typed
 * (`p -- 'make && make test'`); several are an argv whose words must arrive intact
 * (`p -- printf '%s|' "a b"`), as ssh users expect from `ssh host -- cmd args`.
 */
export function commandLine(argv: readonly string[]): string {
  return argv.length === 1 ? argv[0]! : shJoin(argv);
}
