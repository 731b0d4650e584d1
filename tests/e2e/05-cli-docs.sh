#!/usr/bin/env bash
# The CLI reference in step with the binary and the code. Commands come from `godwit --help`,
# each command's flags from the option lines of `godwit CMD --help`. Checked:
#   - every command has a section "## godwit CMD" in docs/cli.md and a usage line in README.md;
#   - every flag (short and long) is in its command's flag table in docs/cli.md, and every flag
#     in a flag table is in that command's --help;
#   - every `godwit CMD` named in docs/cli.md or README.md is a command, every usage line in
#     their code blocks uses only that command's flags, and every --flag in docs/cli.md's
#     command sections is a flag of some command;
#   - each command's --help lists exactly the options its option table in src/cli/ accepts;
#   - every environment variable the code reads (getenv in src/ and bench/, ${VAR:-default} in
#     the scripts) is in docs/troubleshooting.md.
# Runs nothing but --help: no VM, no state directory.
. tests/lib/e2e.sh
DOC=docs/cli.md
README=README.md
TROUBLE=docs/troubleshooting.md

# help_flags: the flags on the option lines of a help text (stdin), one a line. An option line
# starts with spaces and a dash; its flags are the words before the first run of two spaces.
help_flags() {
	local line head tok
	local -a toks
	while IFS= read -r line; do
		[[ $line =~ ^\ +- ]] || continue
		head=${line#"${line%%[! ]*}"}
		head=${head%%  *}
		read -ra toks <<<"${head//,/ }"
		for tok in "${toks[@]}"; do
			[[ $tok =~ ^(--[a-z][a-z0-9-]*|-[A-Za-z])$ ]] && printf '%s\n' "$tok"
		done
	done
	return 0
}

# help_argflags: the flags (stdin: a help text) that take an argument: those whose option line
# has a word besides its flags ("-e, --env K=V")
help_argflags() {
	local line head tok
	local -a toks fl
	while IFS= read -r line; do
		[[ $line =~ ^\ +- ]] || continue
		head=${line#"${line%%[! ]*}"}
		head=${head%%  *}
		read -ra toks <<<"${head//,/ }"
		fl=()
		for tok in "${toks[@]}"; do
			[[ $tok =~ ^(--[a-z][a-z0-9-]*|-[A-Za-z])$ ]] && fl+=("$tok")
		done
		[ "${#fl[@]}" -lt "${#toks[@]}" ] && printf '%s\n' "${fl[@]}"
	done
	return 0
}

# section TITLE: the lines of docs/cli.md under "## TITLE", up to the next "## " heading
section() {
	awk -v t="## $1" '$0 == t { on = 1; next } /^## / { on = 0 } on' "$DOC"
}

# table_flags: the flags in the first cell of the table rows ("| `-d`, `--detach` | ...") of
# a section (stdin), one a line
table_flags() {
	grep -E '^\| *`-' | cut -d'|' -f2 | grep -oE '`[^`]+`' | tr -d '`' | awk '{ print $1 }' |
		grep -E '^(--[a-z][a-z0-9-]*|-[A-Za-z])$' || true
}

# code_lines FILE: the lines of FILE's fenced code blocks, without their comments
code_lines() {
	awk '/^```/ { on = !on; next } on' "$1" | sed -E 's/(^| )#.*$//'
}

# spans FILE: the contents of FILE's `code spans` outside code blocks, one a line
spans() {
	awk '/^```/ { on = !on; next } !on' "$1" | grep -oE '`[^`]+`' | tr -d '`' || true
}

# usage_lines FILE: the code-block lines of FILE that run godwit ("a ; b" gives two)
usage_lines() {
	code_lines "$1" | tr ';' '\n' | sed -E 's/^ +//; s/ +$//' | grep -E '^godwit( |$)' || true
}

in_list() { grep -qxF -- "$1" <<<"$2"; }

GLOBAL_HELP=$("$GODWIT" --help); rc=$?
assert_eq "godwit --help exits 0" 0 "$rc"
CMDS=$(awk '/^Commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
	<<<"$GLOBAL_HELP")
assert_true "godwit --help lists commands" test -n "$CMDS"
GLOBAL_FLAGS=$(help_flags <<<"$GLOBAL_HELP")
GLOBAL_ARGFLAGS=$(help_argflags <<<"$GLOBAL_HELP")
declare -A FLAGS ARGFLAGS
ALL_FLAGS=$GLOBAL_FLAGS
for c in $CMDS; do
	out=$("$GODWIT" "$c" --help); rc=$?
	assert_eq "godwit $c --help exits 0" 0 "$rc"
	FLAGS[$c]=$(help_flags <<<"$out")
	ARGFLAGS[$c]=$(help_argflags <<<"$out")
	ALL_FLAGS=$(printf '%s\n%s\n' "$ALL_FLAGS" "${FLAGS[$c]}" | sort -u)
done

# --help against the option tables of src/cli/ (main.c for the global options)
code_flags() {
	local f=$1
	if grep -q 'getopt_long(' "$f"; then
		grep -oE '\{ "[a-z][a-z0-9-]*", (no|required|optional)_argument' "$f" |
			cut -d'"' -f2 | sed 's/^/--/'
		grep -oE 'getopt_long\(argc, argv, "[^"]*"' "$f" | sed -E 's/.*"(.*)"/\1/' |
			tr -d '+:' | grep -oE '[A-Za-z]' | sed 's/^/-/'
	else # no getopt: the arguments it compares itself
		grep -oE 'strcmp\(argv\[1\], "-[^"]*"\)' "$f" | cut -d'"' -f2
	fi
	return 0
}
check_code() { # WHO FILE HELPFLAGS
	local f
	assert_true "$2 exists" test -f "$2"
	[ -f "$2" ] || return 0
	local code
	code=$(code_flags "$2" | sort -u)
	for f in $code; do
		assert_true "$1 --help lists $f (accepted by $2)" in_list "$f" "$3"
	done
	for f in $3; do
		assert_true "$2 accepts $f (listed by $1 --help)" in_list "$f" "$code"
	done
}
check_code "godwit" src/cli/main.c "$GLOBAL_FLAGS"
for c in $CMDS; do
	check_code "godwit $c" "src/cli/cmd_$c.c" "${FLAGS[$c]}"
done

# --help -> docs/cli.md and README.md
GLOBAL_DOC=$(section "Global options" | table_flags)
for f in $GLOBAL_FLAGS; do
	assert_true "$DOC: Global options documents $f" in_list "$f" "$GLOBAL_DOC"
done
README_USAGE=$(usage_lines "$README")
for c in $CMDS; do
	assert_true "$DOC has a section '## godwit $c'" grep -qxF "## godwit $c" "$DOC"
	assert_true "$README: a usage line for godwit $c" \
		grep -qE "^godwit( --(root|accel|kernel|initrd) [^ ]+)* $c( |$)" <<<"$README_USAGE"
	doc=$(section "godwit $c" | table_flags)
	for f in ${FLAGS[$c]}; do
		assert_true "$DOC: godwit $c documents $f" in_list "$f" "$doc"
	done
done

# docs/cli.md and README.md -> --help
HEADINGS=$(sed -nE 's/^## godwit (.*)$/\1/p' "$DOC")
for c in $HEADINGS; do
	assert_true "$DOC: '## godwit $c' is a command of godwit --help" in_list "$c" "$CMDS"
	doc=$(section "godwit $c" | table_flags)
	for f in $doc; do
		assert_true "$DOC: godwit $c's $f is in godwit $c --help" in_list "$f" "${FLAGS[$c]:-}"
	done
	for f in $(section "godwit $c" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		assert_true "$DOC: $f (in godwit $c's section) is a flag of godwit" in_list "$f" "$ALL_FLAGS"
	done
done
for f in $(section "Global options" | table_flags); do
	assert_true "$DOC: global $f is in godwit --help" in_list "$f" "$GLOBAL_FLAGS"
done

# "godwit CMD" in code spans and code blocks names a command (after any global options)
for file in "$DOC" "$README" "$TROUBLE"; do
	named=$({ spans "$file"; code_lines "$file"; } |
		grep -oE 'godwit( --(root|accel|kernel|initrd) [^ ]+)* [a-z][a-z_-]*' |
		awk '{ print $NF }' | sort -u)
	for c in $named; do
		assert_true "$file: 'godwit $c' is a command of godwit --help" in_list "$c" "$CMDS"
	done
done

# usage_line LINE: a line "godwit [GLOBAL...] CMD ARGS" uses only flags CMD has. An option
# that takes an argument skips the next word; for a command that stops at its first operand
# (getopt "+": run, exec) the words after it are the container's.
usage_line() {
	local -a w
	local i=1 c f eq bad="" stop=0
	read -ra w <<<"$1"
	while [ "$i" -lt "${#w[@]}" ] && [[ ${w[$i]} == -* ]]; do
		f=${w[$i]%%=*}
		in_list "$f" "$GLOBAL_FLAGS" || bad="$bad $f"
		i=$((i + 1))
		if [[ ${w[$i - 1]} != *=* ]] && in_list "$f" "$GLOBAL_ARGFLAGS"; then
			i=$((i + 1))
		fi
	done
	c=${w[$i]:-}
	if [ -n "$c" ] && in_list "$c" "$CMDS"; then
		grep -qE 'getopt_long\(argc, argv, "\+' "src/cli/cmd_$c.c" 2>/dev/null && stop=1
		for ((i = i + 1; i < ${#w[@]}; i++)); do
			if [[ ! ${w[$i]} =~ ^\[*(--?[A-Za-z][A-Za-z0-9-]*)(=.*)?\]*$ ]]; then
				[ "$stop" -eq 1 ] && break
				continue
			fi
			f=${BASH_REMATCH[1]} eq=${BASH_REMATCH[2]}
			if [[ $f =~ ^-[A-Za-z]{2,}$ ]] && ! in_list "$f" "${FLAGS[$c]}"; then
				# bundled short flags (-it): each one a flag without an argument
				local k
				for ((k = 1; k < ${#f}; k++)); do
					in_list "-${f:$k:1}" "${FLAGS[$c]}" &&
						! in_list "-${f:$k:1}" "${ARGFLAGS[$c]}" || bad="$bad -${f:$k:1}"
				done
				continue
			fi
			in_list "$f" "${FLAGS[$c]}" || bad="$bad $f"
			if [ -z "$eq" ] && in_list "$f" "${ARGFLAGS[$c]}"; then
				i=$((i + 1))
			fi
		done
	fi
	[ -z "$bad" ] || echo "#   not a flag of godwit${c:+ $c}:$bad"
	[ -z "$bad" ]
}
for file in "$DOC" "$README" "$TROUBLE"; do
	while IFS= read -r line; do
		assert_true "$file: usage '$line'" usage_line "$line"
	done < <(usage_lines "$file")
done

# every environment knob is documented
ENVS=$({
	grep -rhoE 'getenv\("[A-Za-z_][A-Za-z0-9_]*"\)' src bench | cut -d'"' -f2
	grep -rhoE --exclude="$(basename "$0")" '\$\{[A-Z][A-Z0-9_]*:-' scripts tests/lib tests/e2e \
		tests/check.sh bench guest/kit |
		sed -E 's/^\$\{//; s/:-$//'
} | sort -u)
assert_true "the code reads environment variables" test -n "$ENVS"
for v in $ENVS; do
	assert_true "$TROUBLE documents \$$v" grep -qF "\`$v\`" "$TROUBLE"
done
finish
