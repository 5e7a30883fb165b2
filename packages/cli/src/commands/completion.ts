import { JobStore, loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { strictArgs } from "../_args.ts";
import { usage } from "../_errors.ts";

const COMMANDS = "ls logs stop pull rm prune wait rerun worker ui completion";
const WORKER_COMMANDS = "register ls set default rm";

const BASH = `# p completion for bash: eval "$(p completion bash)"
_p_complete() {
  local cur=\${COMP_WORDS[COMP_CWORD]} i
  local words=("\${COMP_WORDS[@]:1:COMP_CWORD-1}")
  for i in "\${words[@]}"; do
    [ "$i" = "--" ] && { COMPREPLY=($(compgen -c -- "$cur")); return; }
  done
  case "\${words[0]}" in
    "") COMPREPLY=($(compgen -W "${COMMANDS} -- -n -d $(p completion --candidates workers 2>/dev/null)" -- "$cur")) ;;
    ls|logs|stop|pull|rm|wait|rerun)
      COMPREPLY=($(compgen -W "$(p completion --candidates jobs 2>/dev/null | cut -f1)" -- "$cur")) ;;
    worker)
      if [ \${#words[@]} -eq 1 ]; then COMPREPLY=($(compgen -W "${WORKER_COMMANDS}" -- "$cur"))
      else case "\${words[1]}" in
        default|rm|set) COMPREPLY=($(compgen -W "$(p completion --candidates workers 2>/dev/null)" -- "$cur")) ;;
      esac
      fi ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
    prune) ;;
    *) COMPREPLY=($(compgen -W "-- -n -d" -- "$cur")) ;;
  esac
}
complete -F _p_complete p
`;

const ZSH = `# p completion for zsh: eval "$(p completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${BASH}`;

const FISH = `# p completion for fish: p completion fish | source
complete -c p -f
complete -c p -n __fish_use_subcommand -a '${COMMANDS}'
complete -c p -n __fish_use_subcommand -a '(p completion --candidates workers)' -d worker
complete -c p -n '__fish_seen_subcommand_from ls logs stop pull rm wait rerun' -a '(p completion --candidates jobs)'
complete -c p -n '__fish_seen_subcommand_from worker; and not __fish_seen_subcommand_from ${WORKER_COMMANDS}' \\
  -a '${WORKER_COMMANDS}'
complete -c p -n '__fish_seen_subcommand_from worker; and __fish_seen_subcommand_from default rm set' \\
  -a '(p completion --candidates workers)'
complete -c p -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'
`;

const args = {
  shell: { type: "positional", required: false, description: "bash, zsh or fish" },
  candidates: { type: "string", description: "Print completion candidates (workers or jobs), one per line" },
} as const;

export default defineCommand({
  meta: { name: "completion", description: 'Print a shell completion script. Example: eval "$(p completion bash)"' },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "completion");
    if (values.candidates === "workers") {
      for (const w of loadConfig().workers) process.stdout.write(`${w.name}\n`);
      return 0;
    }
    if (values.candidates === "jobs") {
      const what = (command: string) => command.replace(/\s+/g, " ").slice(0, 60);
      const jobs = new JobStore().list();
      for (const j of jobs) process.stdout.write(`${j.id.slice(0, 8)}\t${j.status}: ${what(j.command)}\n`);
      // (then each group, which an id argument takes too)
      const groups = Map.groupBy(
        jobs.filter((j) => j.group),
        (j) => j.group!,
      );
      for (const [group, of] of groups)
        process.stdout.write(`${group.slice(0, 8)}\tgroup of ${of.length}: ${what(of[0]!.command)}\n`);
      return 0;
    }
    if (values.candidates !== undefined) throw usage("--candidates takes workers or jobs");
    const script = { bash: BASH, zsh: ZSH, fish: FISH }[positionals[0] ?? ""];
    if (!script) throw usage("usage: p completion <bash|zsh|fish>");
    process.stdout.write(script);
    return 0;
  },
});
