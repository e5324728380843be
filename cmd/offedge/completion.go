package main

import (
	"flag"
	"fmt"
	"strings"
)

// completionFlags lists the long flags a command declares (shorthands
// left out), from the command's own flag set.
func completionFlags(c command) []*flag.Flag {
	fs := flagsOf(c)
	if fs == nil {
		return nil
	}
	var out []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !isShorthand(f) {
			out = append(out, f)
		}
	})
	return out
}

// nodeFlags are the flags whose value is a node name; why and impact also
// take node names as arguments.
var nodeFlags = map[string]bool{"node": true}

func cmdCompletion(e *env, args []string) error {
	fs := e.newFlags("completion")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("name a shell: bash, zsh or fish")
	}
	var names []string
	var b strings.Builder
	var cs []command
	for _, c := range commands() {
		if !c.hidden {
			cs = append(cs, c)
			names = append(names, c.name)
		}
	}
	switch pos[0] {
	case "bash", "zsh":
		if pos[0] == "zsh" {
			b.WriteString("autoload -U +X bashcompinit && bashcompinit\n")
		}
		b.WriteString(`_offedge_nodes() {
  local inv=() i
  for ((i=1; i<COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in --inventory|-i) inv=(--inventory "${COMP_WORDS[i+1]}");; esac
  done
  COMPREPLY=($(compgen -W "$(offedge __nodes "${inv[@]}" 2>/dev/null)" -- "$1"))
}
_offedge() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]}
`)
		fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(names, " "))
		b.WriteString("  case \"$prev\" in\n    --node) _offedge_nodes \"$cur\"; return;;\n  esac\n")
		b.WriteString("  case \"$cmd\" in\n")
		for _, c := range cs {
			var fl []string
			for _, f := range completionFlags(c) {
				fl = append(fl, "--"+f.Name)
			}
			if c.name == "help" {
				fmt.Fprintf(&b, "    help) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", strings.Join(names, " "))
				continue
			}
			if len(fl) == 0 {
				continue
			}
			nodes := ""
			if c.name == "why" || c.name == "impact" {
				nodes = "[[ $cur != -* ]] && { _offedge_nodes \"$cur\"; return; }; "
			}
			fmt.Fprintf(&b, "    %s) %sCOMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", c.name, nodes, strings.Join(fl, " "))
		}
		b.WriteString("  esac\n}\ncomplete -o default -F _offedge offedge\n")
	case "fish":
		for _, c := range cs {
			fmt.Fprintf(&b, "complete -c offedge -n __fish_use_subcommand -a %s -d %q\n", c.name, c.summary)
			if c.name == "why" || c.name == "impact" {
				fmt.Fprintf(&b, "complete -c offedge -n '__fish_seen_subcommand_from %s' -xa '(offedge __nodes 2>/dev/null)'\n", c.name)
			}
			for _, f := range completionFlags(c) {
				extra := ""
				if nodeFlags[f.Name] {
					extra = " -xa '(offedge __nodes 2>/dev/null)'"
				}
				fmt.Fprintf(&b, "complete -c offedge -n '__fish_seen_subcommand_from %s' -l %s -d %q%s\n", c.name, f.Name, firstLine(f.Usage), extra)
			}
		}
	default:
		return usageError("unknown shell %q: use bash, zsh or fish", pos[0])
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

func firstLine(s string) string {
	s = strings.ReplaceAll(s, "`", "")
	if i := strings.IndexAny(s, "(:;"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
