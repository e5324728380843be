package main

import (
	"fmt"
	"strings"
)

func cmdCompletion(e *env, args []string) error {
	if len(args) != 1 {
		return usageError("name a shell: bash, zsh or fish")
	}
	var names []string
	var b strings.Builder
	cs := commands()
	for _, c := range cs {
		names = append(names, c.name)
	}
	switch args[0] {
	case "bash", "zsh":
		if args[0] == "zsh" {
			b.WriteString("autoload -U +X bashcompinit && bashcompinit\n")
		}
		b.WriteString("_offedge() {\n  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}\n")
		fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(names, " "))
		b.WriteString("  case \"$cmd\" in\n")
		for _, c := range cs {
			if len(c.flags) > 0 {
				fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", c.name, strings.Join(c.flags, " "))
			}
		}
		b.WriteString("  esac\n}\ncomplete -o default -F _offedge offedge\n")
	case "fish":
		for _, c := range cs {
			fmt.Fprintf(&b, "complete -c offedge -n __fish_use_subcommand -a %s -d %q\n", c.name, c.summary)
			for _, f := range c.flags {
				fmt.Fprintf(&b, "complete -c offedge -n '__fish_seen_subcommand_from %s' -l %s\n", c.name, strings.TrimPrefix(f, "--"))
			}
		}
	default:
		return usageError("unknown shell %q: use bash, zsh or fish", args[0])
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}
