"""The GitHub runner's workflow-command parser, ported from actions/runner as a test oracle.

Sources: `ActionCommand.TryParseV2` / `TryParse` (src/Runner.Common/ActionCommand.cs),
`ActionCommandManager.TryProcessCommand` (src/Runner.Worker/ActionCommandManager.cs)
and `ProcessInvoker.StartReadStream` (src/Runner.Sdk/ProcessInvoker.cs), which reads
stdout and stderr with `StreamReader.ReadLine()`: lines end at CR, LF or CRLF only.

Where the runner compares strings culture-sensitively (`StartsWith`, `IndexOf` under
ICU may skip ignorable characters), this oracle errs on the side of finding a command:
each line is also parsed with default-ignorable and format characters removed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

#: Commands the runner registers (command extensions plus `stop-commands`).
REGISTERED = frozenset(
    {
        "stop-commands",
        "set-env",
        "set-output",
        "save-state",
        "add-mask",
        "add-path",
        "add-matcher",
        "remove-matcher",
        "warning",
        "error",
        "notice",
        "debug",
        "group",
        "endgroup",
        "echo",
    }
)
#: .NET `char.IsWhiteSpace`, which `string.TrimStart()` uses.
DOTNET_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DATA = [("%0D", "\r"), ("%0A", "\n"), ("%25", "%")]
_PROPERTY = [("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")]
_V1 = [("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%")]


@dataclass
class Command:
    name: str
    properties: dict[str, str] = field(default_factory=dict)
    data: str = ""


def _unescape(text: str, mappings: list[tuple[str, str]]) -> str:
    for escaped, char in mappings:
        text = text.replace(escaped, char)
    return text


def _fold(name: str) -> str:
    """OrdinalIgnoreCase: per-character simple upper-casing."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in name)


def _registered(name: str, registered: frozenset[str] | set[str]) -> bool:
    return _fold(name) in {_fold(r) for r in registered}


def parse_v2(message: str, registered: frozenset[str] | set[str] = REGISTERED) -> Command | None:
    """`TryParseV2`: `::name props::data` after leading white space."""
    message = message.lstrip(DOTNET_WHITESPACE)
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    if not name or not _registered(name, registered):
        return None
    command = Command(name)
    if space > 0:
        for item in info[space + 1 :].strip(DOTNET_WHITESPACE).split(","):
            pair = [p for p in item.split("=", 1) if p] if item else []
            if len(pair) == 2:
                command.properties[pair[0]] = _unescape(pair[1], _PROPERTY)
    command.data = _unescape(message[end + 2 :], _DATA)
    return command


def parse_v1(message: str, registered: frozenset[str] | set[str] = REGISTERED) -> Command | None:
    """`TryParse`: `##[name k=v;k=v]data` anywhere in the line."""
    start = message.find("##[")
    if start < 0:
        return None
    close = message.find("]", start)
    if close < 0:
        return None
    info = message[start + 3 : close]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    if not name or not _registered(name, registered):
        return None
    return Command(name, data=_unescape(message[close + 1 :], _V1))


def runner_lines(output: str) -> list[str]:
    """`StreamReader.ReadLine` over the whole stream."""
    return re.split(r"\r\n|\r|\n", output.removesuffix("\n").removesuffix("\r"))


#: Unicode's Default_Ignorable_Code_Point outside category Cf (which is ignorable too).
_IGNORABLE_RANGES = [
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
]


def _ignorable(char: str) -> bool:
    """What an ICU comparison may skip: format and control characters, default ignorables."""
    if char in DOTNET_WHITESPACE:
        return False
    if unicodedata.category(char) in {"Cf", "Cc"}:
        return True
    return any(low <= ord(char) <= high for low, high in _IGNORABLE_RANGES)


def _without_ignorables(line: str) -> str:
    return "".join(c for c in line if not _ignorable(c))


class Runner:
    """`TryProcessCommand`'s state machine: what the runner acts on, line by line."""

    def __init__(self) -> None:
        self.registered: set[str] = set(REGISTERED)
        self.stop_token: str | None = None
        self.acted: list[Command] = []

    def _parse(self, line: str) -> Command | None:
        for candidate in (line, _without_ignorables(line)):
            for parse in (parse_v2, parse_v1):
                command = parse(candidate, self.registered)
                if command is not None:
                    return command
        return None

    def line(self, line: str) -> None:
        command = self._parse(line)
        if command is None:
            return
        if self.stop_token is not None:
            if _fold(command.name) == _fold(self.stop_token):
                self.registered.discard(self.stop_token)
                self.stop_token = None
                self.acted.append(command)
            return
        if _fold(command.name) == _fold("stop-commands"):
            self.stop_token = command.data
            self.registered.add(command.data)
        self.acted.append(command)

    def feed(self, output: str) -> list[Command]:
        """Every command the runner acts on in `output` (stop and resume included)."""
        for line in runner_lines(output):
            self.line(line)
        return self.acted


def commands_in(output: str) -> list[Command]:
    return Runner().feed(output)


def parse_file_command(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT` / `$GITHUB_ENV` as the runner reads them on Linux (FileCommandManager).

    Lines end at LF only; `NAME=VALUE` or `NAME<<DELIM` ... a line equal to `DELIM`.
    A missing delimiter is an error in the runner, so it raises here too.
    """
    values: dict[str, str] = {}
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line.split("=", 1)
            values[name] = value
            continue
        name, delimiter = line.split("<<", 1) if heredoc >= 0 else ("", "")
        if not name or not delimiter:
            raise ValueError(f"invalid file command line {line!r}")
        body: list[str] = []
        while index < len(lines) and lines[index] != delimiter:
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise ValueError(f"delimiter {delimiter!r} not found")
        index += 1
        values[name] = "\n".join(body)
    return values
