"""``unstructured-jobs completion bash|zsh|fish``: a shell completion script, printed.

Generated from the argparse parser itself, so it always knows every subcommand, option and
choice (``--status`` values). No library: shtab or argcomplete would do it, at the cost of a
dependency (argcomplete also runs Python on every Tab press); the parser is small enough that
a generator of about 150 lines is simpler to keep.

Install: see `INSTALL` (printed by ``completion --help``) and docs/cli.md. Choices an option
reads in any case (``--status``) complete in lower case too: bash offers the lower-case words
after a lower-case start, zsh matches case-insensitively, fish does so by itself.
"""

from __future__ import annotations

import argparse
import re

import attrs

from .._exit_codes import ExitCode

NAME = "completion"
HELP = "print a shell completion script (bash, zsh or fish)"
COMMON_OPTIONS = False
NEEDS_PARSER = True
"""`build_parser` gives this command the whole parser (``args.parser``), to describe it."""
PROG = "unstructured-jobs"
SHELLS = ("bash", "zsh", "fish")
_FILE_OPTIONS = frozenset({"output", "manifest", "workdir", "ca_bundle", "job_nodes"})
_FILE_ARGUMENTS = frozenset({"files", "inputs"})


INSTALL = f"""install (then open a new shell):
  bash: {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}
        (needs the bash-completion package; or add to ~/.bashrc:
         eval "$({PROG} completion bash)")
  zsh:  {PROG} completion zsh > "${{fpath[1]}}/_{PROG}"
        (or add to ~/.zshrc, after compinit: eval "$({PROG} completion zsh)")
  fish: {PROG} completion fish > ~/.config/fish/completions/{PROG}.fish
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The shell, and how to install the script (``--help``)."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = INSTALL
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(args: argparse.Namespace) -> ExitCode:
    """Print the script."""
    script = {"bash": bash, "zsh": zsh, "fish": fish}[args.shell](describe(args.parser))
    print(script, end="")
    return ExitCode.OK


# -- what the parser holds -----------------------------------------------------------------


@attrs.frozen
class Option:
    """One option: its flags, and what its value is (none, a choice, a file, free text)."""

    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()
    files: bool = False
    any_case: bool = False
    """The option takes its choices in lower case too (``--status failed``)."""


@attrs.frozen
class Command:
    """One subcommand: its options, and what its positional arguments are (files, or words
    from a list of choices)."""

    name: str
    help: str
    options: tuple[Option, ...]
    files: bool
    words: tuple[str, ...] = ()


@attrs.frozen
class Program:
    """The program's own options (before the command) and its commands."""

    options: tuple[Option, ...]
    commands: tuple[Command, ...]


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    out = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        out.append(
            Option(
                tuple(action.option_strings),
                _plain(action.help or ""),
                action.nargs != 0,
                tuple(str(c) for c in action.choices or ()),
                action.dest in _FILE_OPTIONS,
                _any_case(action),
            )
        )
    return tuple(out)


def _any_case(action: argparse.Action) -> bool:
    """Whether the option's type reads each of its (upper-case) choices in lower case too."""
    choices = [str(c) for c in action.choices or ()]
    if not choices or not callable(action.type) or any(c != c.upper() for c in choices):
        return False
    try:
        return all(action.type(c.lower()) == c for c in choices)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False


def describe(parser: argparse.ArgumentParser) -> Program:
    """The program as the completion scripts need it."""
    commands = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                positionals = [a for a in sub._actions if not a.option_strings]
                files = any(a.dest in _FILE_ARGUMENTS for a in positionals)
                words = tuple(str(c) for a in positionals for c in a.choices or ())
                text = _plain(helps.get(name, ""))
                commands.append(Command(name, text, _options(sub), files, words))
    return Program(_options(parser), tuple(commands))


def _plain(text: str) -> str:
    """Help text on one line, without what shells quote specially."""
    text = re.sub(r"%\((\w+)\)s", "", text)
    return re.sub(r"\s+", " ", re.sub(r"[`'\"$\\\[\]:;]", "", text)).strip()


# -- bash ----------------------------------------------------------------------------------


def _bash_reply(option: Option) -> str:
    """What bash offers for the value of `option`."""
    if option.choices and option.any_case:  # lower-case words for a lower-case start
        lower = " ".join(c.lower() for c in option.choices)
        return (
            f'if [[ "$cur" == [[:lower:]]* ]]; then COMPREPLY=($(compgen -W "{lower}" -- '
            f'"$cur")); else COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- '
            '"$cur")); fi'
        )
    if option.choices:
        return f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))'
    return "_unstructured_jobs_files" if option.files else "COMPREPLY=()"


def bash(program: Program) -> str:
    """A bash completion function, registered with ``complete -F``."""
    commands = " ".join(c.name for c in program.commands)
    top = " ".join(f for o in program.options for f in o.flags)
    # Matched on "COMMAND:PREVIOUS-WORD": one flag may take other values in another command
    # (`list --status` a job status, `workflows --status` active or inactive).
    values = []
    for command in program.commands:
        for option in command.options:
            if option.takes_value:
                pattern = "|".join(f"{command.name}:{flag}" for flag in option.flags)
                values.append(f"        {pattern}) {_bash_reply(option)}; return;;")
    for option in program.options:  # before the command
        if option.takes_value:
            pattern = "|".join(f"*:{flag}" for flag in option.flags)
            values.append(f"        {pattern}) {_bash_reply(option)}; return;;")
    per_command = []
    for command in program.commands:
        flags = " ".join(f for o in command.options for f in o.flags)
        per_command.append(
            f'        {command.name}) opts="{flags}"; files={int(command.files)}; '
            f'words="{" ".join(command.words)}";;'
        )
    return f"""# bash completion for {PROG}; generated by `{PROG} completion bash`
_unstructured_jobs_files() {{  # file names, spaces and all
    local IFS=$'\\n'
    COMPREPLY=($(compgen -f -- "$cur"))
}}
_unstructured_jobs() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cmd="" opts="" files=0 words="" i
    [[ $COMP_CWORD -gt 0 ]] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {"|".join(c.name for c in program.commands)}) cmd="${{COMP_WORDS[i]}}"; break;;
        esac
    done
    case "$cmd:$prev" in
{chr(10).join(values)}
    esac
    if [[ -z "$cmd" ]]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "{top}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{commands}" -- "$cur"))
        fi
        return
    fi
    case "$cmd" in
{chr(10).join(per_command)}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $files -eq 1 ]]; then
        _unstructured_jobs_files
    elif [[ -n "$words" ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        COMPREPLY=()
    fi
}}
complete -o filenames -o bashdefault -F _unstructured_jobs {PROG}
"""


# -- zsh -----------------------------------------------------------------------------------


def _zsh_spec(option: Option) -> str:
    names = option.flags[0] if len(option.flags) == 1 else "{" + ",".join(option.flags) + "}"
    exclusive = f"'({' '.join(option.flags)})'" if len(option.flags) > 1 else ""
    value = ""
    if option.takes_value:
        if option.choices and option.any_case:  # `fa<Tab>` completes to FAILED
            value = f':value:{{compadd -M "m:{{a-z}}={{A-Z}}" -- {" ".join(option.choices)}}}'
        elif option.choices:
            value = f":value:({' '.join(option.choices)})"
        elif option.files:
            value = ":file:_files"
        else:
            value = ":value: "
    return f"{exclusive}{names}'[{option.help}]{value}'"


def zsh(program: Program) -> str:
    """A zsh completion function (``#compdef``), for ``$fpath`` or ``source``."""
    described = "\n".join(f"        '{c.name}:{c.help}'" for c in program.commands)
    top = " \\\n        ".join(_zsh_spec(o) for o in program.options)
    cases = []
    for command in program.commands:
        specs = [_zsh_spec(o) for o in command.options]
        if command.files:
            specs.append("'*:file:_files'")
        elif command.words:
            specs.append(f"'1:value:({' '.join(command.words)})'")
        body = " \\\n                ".join(specs) or "''"
        cases.append(f"            {command.name})\n                _arguments {body} ;;")
    return f"""#compdef {PROG}
# zsh completion for {PROG}; generated by `{PROG} completion zsh`
_unstructured_jobs() {{
    local curcontext="$curcontext" state line
    local -a commands
    commands=(
{described}
    )
    _arguments -C \\
        {top} \\
        '1: :->command' \\
        '*:: :->arguments'
    case $state in
        command) _describe command commands ;;
        arguments)
            case $words[1] in
{chr(10).join(cases)}
            esac ;;
    esac
}}
if [[ "$funcstack[1]" == "_unstructured_jobs" ]]; then
    _unstructured_jobs "$@"
else
    compdef _unstructured_jobs {PROG}
fi
"""


# -- fish ----------------------------------------------------------------------------------


def _fish_option(option: Option, condition: str) -> str:
    parts = [f"complete -c {PROG}"]
    if condition:
        parts.append(f"-n {condition}")
    for flag in option.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if option.takes_value:
        parts.append("-r" if option.files else "-x")
        if option.choices:
            parts.append(f"-a '{' '.join(option.choices)}'")
    parts.append(f"-d '{option.help}'")
    return " ".join(parts)


def fish(program: Program) -> str:
    """fish ``complete`` commands."""
    names = " ".join(c.name for c in program.commands)
    lines = [
        f"# fish completion for {PROG}; generated by `{PROG} completion fish`",
        f"complete -c {PROG} -f",
    ]
    lines += [_fish_option(o, "__fish_use_subcommand") for o in program.options]
    for command in program.commands:
        lines.append(
            f"complete -c {PROG} -n '__fish_use_subcommand' -a {command.name} -d '{command.help}'"
        )
        inside = f"'__fish_seen_subcommand_from {command.name}'"
        lines += [_fish_option(o, inside) for o in command.options]
        if command.files:
            lines.append(f"complete -c {PROG} -n {inside} -F")
        elif command.words:
            lines.append(f"complete -c {PROG} -n {inside} -x -a '{' '.join(command.words)}'")
    lines.append(f"# commands: {names}")
    return "\n".join(lines) + "\n"
