#!/bin/bash
# SPDX-License-Identifier: MIT
# What a shell user and an admin get besides the binary: bash completion
# (etc/stage-py.bash-completion, which zsh takes too) offers the commands,
# each command's options as --help lists them, and the values of --shell
# and the like; the module file (etc/stage-py.module.in, made for the
# prefix) puts stage-py on PATH and its manual on MANPATH.
. "${srcdir:-.}/tests/lib.sh"
comp=$T_SRCDIR/etc/stage-py.bash-completion

# complete WORDS...: what bash completion offers for the last word
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _stage_py; printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$comp" "$@"
}
t_is "$(complete_words stage-py '' | tr '\n' ' ')" "check clean config list pack scan stage " \
    "stage-py <TAB>: the commands"
t_is "$(complete_words stage-py --sh)" "--shell" "stage-py --sh<TAB>: --shell"
t_is "$(complete_words stage-py --shell '' | tr '\n' ' ')" "bash csh dash fish json ksh sh tcsh zsh " \
    "--shell <TAB>: the shells"
t_is "$(complete_words stage-py pack --c)" "--compress" "pack --c<TAB>: --compress"
t_is "$(complete_words stage-py list --sh)" "" "list --sh<TAB>: nothing (list has no --shell)"
t_is "$(complete_words stage-py config --ti)" "--timeout" "config --ti<TAB>: --timeout, as for stage"
t_is "$(complete_words stage-py config --out)" "" "config --out<TAB>: nothing (config prints on stdout)"
mkdir -p "$T_TMP/w/sub"
touch "$T_TMP/w/app.ini" "$T_TMP/w/app.bundle" "$T_TMP/w/notes.txt"
t_is "$(cd "$T_TMP/w" && complete_words stage-py -m '' | tr '\n' ' ')" "app.ini sub/ " \
    "-m <TAB>: manifests and directories"
t_is "$(cd "$T_TMP/w" && complete_words stage-py --bundle '' | tr '\n' ' ')" "app.bundle sub/ " \
    "--bundle <TAB>: bundles and directories"
touch "$T_TMP/w/my app.ini"
mkdir "$T_TMP/w/my dir"
# compopt works only in a completion that bash runs: a stand-in says when
# it is asked for (before the words)
complete_quoted() {
    bash -c '. "$1"; shift; compopt() { printf "compopt %s\n" "$*"; }
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _stage_py; printf "<%s>\n" "${COMPREPLY[@]}" | LC_ALL=C sort' _ "$comp" "$@"
}
t_is "$(cd "$T_TMP/w" && complete_quoted stage-py -m my | tr '\n' ' ')" \
    "compopt -o filenames <my app.ini> <my dir/> " \
    "-m my<TAB>: a name with a blank is one word, quoted as a file name"
t_is "$(cd "$T_TMP/w" && complete_quoted stage-py --dest my | tr '\n' ' ')" \
    "compopt -o filenames <my dir/> " "--dest my<TAB>: directories only, quoted"
t_is "$(cd "$T_TMP/w" && complete_quoted stage-py -o '' | tr '\n' ' ')" \
    "compopt -o filenames <app.bundle> <app.ini> <my app.ini> <my dir/> <notes.txt> <sub/> " \
    "-o <TAB>: any file, and directories to go on into"

# zsh, through its bashcompinit
if ! command -v zsh >/dev/null; then
    t_skip 3 "no zsh"
else
    zcomplete() {
        zsh -f -c 'autoload -U compinit bashcompinit && compinit -u -d "$1/zcompdump" && bashcompinit
            source "$2"; shift 2; setopt ksharrays
            COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _stage_py
            print -l -- "${COMPREPLY[@]}"' _ "$T_TMP" "$comp" "$@" | sort
    }
    t_is "$(zcomplete stage-py '' | tr '\n' ' ')" "check clean config list pack scan stage " \
        "zsh (bashcompinit): stage-py <TAB>: the commands"
    # zsh matches the words against what was typed itself (compadd)
    zwords=$(zcomplete stage-py config --)
    t_like "$zwords" "^--timeout$" "zsh: config --<TAB>: --timeout among config's options"
    t_is "$(printf '%s\n' "$zwords" | grep -c -- '^--output$')" 0 "... and not --output"
fi

# Every option that --help lists is offered for some command, and every
# option of stage for stage.
help=$("$STAGE_PY" --help)
# options: the options that lines of --help start with
options() { grep -oE -- '^ +(-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+' | sort -u; }
all=$(for cmd in stage list clean pack scan check config; do complete_words stage-py "$cmd" --; done | sort -u)
t_is "$(comm -23 <(printf '%s\n' "$help" | options) <(printf '%s\n' "$all") | tr '\n' ' ')" "" \
    "every option of --help is offered"
t_is "$(comm -23 <(printf '%s\n' "$help" | sed -n '/^Options of stage:/,/^Options of list/p' | options) <(complete_words stage-py --) | tr '\n' ' ')" "" \
    "every option of stage is offered for stage"

# The module file, read by tclsh with module's commands as stand-ins
module=$T_BUILDDIR/stage-py.module
modload() {   # modload FILE: what the module file does, a line each
    tclsh <<EOT
proc prepend-path {var dir} { puts "\$var \$dir" }
proc module-whatis {text} {}
proc conflict {name} { puts "conflict \$name" }
source {$1}
EOT
}
if ! command -v tclsh >/dev/null; then
    t_skip 5 "no tclsh (Debian: tcl)"
elif [ ! -f "$module" ]; then
    t_skip 5 "no $module (make stage-py.module)"
else
    got=$(modload "$module")
    bindir=$(sed -n 's/^set bindir {\(.*\)}$/\1/p' "$module")
    mandir=$(sed -n 's/^set mandir {\(.*\)}$/\1/p' "$module")
    t_is "$got" "conflict stage-py
PATH $bindir
MANPATH $mandir" "the module file puts the installed stage-py first on PATH, its manual on MANPATH"
    t_ok "... for the configured bindir, the one stage-py is installed in" \
        test "$bindir" = "$(sed -n 's/^bindir = //p' "$T_BUILDDIR/Makefile" | sed "s|\${exec_prefix}|$(sed -n 's/^exec_prefix = //p' "$T_BUILDDIR/Makefile")|; s|\${prefix}|$(sed -n 's/^prefix = //p' "$T_BUILDDIR/Makefile")|")"
    # installed by a package: /usr/bin is on PATH already, and put first it
    # would hide other modules' programs
    sed 's|^set bindir .*|set bindir {/usr/bin}|; s|^set mandir .*|set mandir {/usr/share/man}|' \
        "$module" >"$T_TMP/pkg.module"
    t_is "$(modload "$T_TMP/pkg.module")" "conflict stage-py" \
        "a module file for /usr/bin and /usr/share/man moves neither"
    sed 's|^set bindir .*|set bindir {/opt/my apps/bin}|' "$module" >"$T_TMP/blank.module"
    t_like "$(modload "$T_TMP/blank.module")" "^PATH /opt/my apps/bin$" \
        "a prefix with a blank in it stays one directory"
    t_like "$(sed -n '/^conflict /p' "$module")" "^conflict stage-py$" "... one version loaded at a time"
fi
t_done
