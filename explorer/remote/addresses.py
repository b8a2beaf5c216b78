"""The remote-control address of every control, generated from the session state and the controller's commands.

    /explorer/<section>/<field> VALUE     a setting, e.g. /explorer/truncation/psi 0.7 (controller.set)
    /explorer/<section>/<method> ARGS     a section method, e.g. /explorer/mixing/apply_preset fine 0 (controller.edit)
    /explorer/<section>/<property> VALUE  a property with a set_ method: /explorer/latent/seed 42 (latent.set_seed)
    /explorer/capture/screenshot          a controller command (CONTROLLER_COMMANDS)
    /explorer/preset/N [SECONDS]          recall preset N, morphing over SECONDS when given (explorer.remote.live)

The table follows the state: a field or method added to a section gets its address without an edit here. OSC and
MIDI share it. Only the OSC types are converted here (senders such as TouchOSC send every number as a float, a
switch as 0 or 1); every value is then checked by the state itself, exactly as when a panel sets it.
"""
from __future__ import annotations

import inspect
import json
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

PREFIX = "/explorer"
PRESET_GROUP = "preset"

# Controller commands with an address: (group, address name, Controller method).
CONTROLLER_COMMANDS = (
    ("capture", "screenshot", "screenshot"),
    ("capture", "save_latents", "save_latents"),
    ("capture", "save_session", "save_session"),
    ("capture", "start_recording", "start_recording"),
    ("capture", "stop_recording", "stop_recording"),
    ("capture", "toggle_recording", "toggle_recording"),
    ("history", "undo", "undo"),
    ("history", "redo", "redo"),
    ("network", "open", "open_network"),
    ("network", "reload", "reload"),
    ("session", "open", "open_session"),
)
NONE_WORDS = ("none", "None", "nil")    # how a sender without OSC's nil type says "None"


class AddressError(ValueError):
    """A message that names no address or carries the wrong arguments; one line."""


@dataclass(frozen=True)
class Parameter:
    """One argument: its Python type (int, float, bool, str), whether None is allowed, whether it may be left out."""
    name: str
    kind: type
    optional: bool = False
    has_default: bool = False

    def describe(self) -> str:
        kind = "list" if self.kind is tuple else self.kind.__name__
        text = f"{self.name}:{kind}" + ("|none" if self.optional else "")
        return f"[{text}]" if self.has_default else text


@dataclass(frozen=True)
class Address:
    path: str
    kind: str                        # 'setting', 'method', 'command' or 'preset'
    group: str                       # the state section, or the command's group
    name: str                        # the field, section method or controller method
    parameters: tuple[Parameter, ...] = ()
    element: Parameter | None = None     # a tuple setting: one element's type (None: one JSON list only)
    is_tuple: bool = False
    summary: str = ""

    def arguments_text(self) -> str:
        if self.is_tuple:
            each = f"{self.element.describe()} ..." if self.element is not None else "JSON list"
            return f"{each}" + (" or one JSON list" if self.element is not None else "")
        return " ".join(p.describe() for p in self.parameters)

    def convert(self, args: Sequence) -> tuple:
        """The OSC arguments as the Python values the state takes; AddressError when the count is wrong."""
        args = tuple(args)
        if self.is_tuple:
            return (self._tuple_value(args),)
        required = sum(1 for p in self.parameters if not p.has_default)
        if not required <= len(args) <= len(self.parameters):
            wanted = (str(required) if required == len(self.parameters)
                      else f"{required} to {len(self.parameters)}")
            raise AddressError(f"{self.path} takes {wanted} argument{'s' if wanted != '1' else ''} "
                               f"({self.arguments_text() or 'none'}), not {len(args)}")
        return tuple(_convert(p, v) for p, v in zip(self.parameters, args))

    def _tuple_value(self, args: tuple):
        if len(args) == 1 and isinstance(args[0], str) and args[0].lstrip().startswith("["):
            try:
                value = json.loads(args[0])
            except ValueError as error:
                raise AddressError(f"{self.path}: not a JSON list: {error}")
            return _tuples(value)
        if self.element is None:
            raise AddressError(f"{self.path} takes one JSON list (e.g. '[]'), not {len(args)} argument(s)")
        return tuple(_convert(self.element, v) for v in args)

    def apply(self, controller, values: tuple):
        """Changes the state (on the controller's thread): one undoable step, checked by the state."""
        if self.kind == "setting":
            return controller.set(self.group, self.name, values[0])
        if self.kind == "method":
            return controller.edit(getattr(controller.session.section(self.group), self.name), *values)
        if self.kind == "command":
            return getattr(controller, self.name)(*values)
        raise AddressError(f"{self.path} is not a state or controller address")


def _tuples(value):
    """JSON lists become tuples (the state's sequences); objects stay dicts (the state reads records from them)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _convert(parameter: Parameter, value):
    if value is None or (parameter.optional and value in NONE_WORDS):
        return None      # the state says whether None is allowed
    kind = parameter.kind
    if kind is tuple:    # a list argument: one JSON list, or a single number for a list of one
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return _tuples(json.loads(value))
            except ValueError as error:
                raise AddressError(f"{parameter.name}: not a JSON list: {error}")
        return (int(value) if isinstance(value, float) and value.is_integer() else value,)
    if isinstance(value, bool):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int):
        return float(value)
    if kind is bool and isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return value          # anything else goes to the state as it is, which refuses it with its own message


# -- generating the table ---------------------------------------------------------------------------------------

def _parameter(name: str, hint, has_default: bool = False) -> Parameter:
    if hint is None or typing.get_origin(hint) is tuple:
        return Parameter(name, tuple, False, has_default)      # a list (or, unannotated, a record list)
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [h for h in typing.get_args(hint) if h is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        hint = members[0] if len(members) == 1 else str
    return Parameter(name, hint if hint in (int, float, bool, str) else str, optional, has_default)


def _setting(section_cls, field: str, hint) -> Address:
    path = f"{PREFIX}/{section_cls.name}/{field}"
    if typing.get_origin(hint) is tuple:
        element_hint = typing.get_args(hint)[0]
        scalar = _parameter("each", element_hint)
        element = scalar if _is_scalar(element_hint) else None
        return Address(path, "setting", section_cls.name, field, element=element, is_tuple=True,
                       summary=f"sets {section_cls.name}.{field} (the elements as arguments, or one JSON list)")
    return Address(path, "setting", section_cls.name, field, (_parameter(field, hint),),
                   summary=f"sets {section_cls.name}.{field}")


def _is_scalar(hint) -> bool:
    if isinstance(hint, types.UnionType):
        return all(h in (int, float, bool, str, type(None)) for h in typing.get_args(hint))
    return hint in (int, float, bool, str)


QUERY_PREFIXES = ("as_",)     # as_request and the like: what a section gives the request, not an edit


def _is_command(name: str, hints: dict) -> bool:
    """A section method that changes the state: it returns nothing, or (add_...) the index of what it added.
    Queries (seed_weights, range_of, as_request, ...) return what they read and get no address."""
    if name.startswith(QUERY_PREFIXES):
        return False
    return hints.get("return", type(None)) is type(None) or name.startswith("add_")


OSC_SCALARS = (int, float, bool, str, type(None))


def _carried(hint) -> bool:
    """Whether a message can carry an argument of this type: numbers, switches, text, None, lists (and, without
    a hint, a list). A record (remote.bind's MidiBinding) or a whole session (remote.store_preset's dict) cannot:
    such methods get no address (a preset is stored by /explorer/preset/store, a binding made by MIDI learn)."""
    if hint is None or hint in OSC_SCALARS or typing.get_origin(hint) is tuple:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return all(_carried(member) for member in typing.get_args(hint))
    return False


def _callable_parameters(function: Callable) -> tuple[Parameter, ...]:
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    return tuple(_parameter(name, hints.get(name), p.default is not inspect.Parameter.empty)
                 for name, p in signature.parameters.items() if name != "self")


def _first_line(function: Callable, fallback: str) -> str:
    """The first sentence of a docstring, for the table."""
    doc = inspect.getdoc(function)
    if not doc:
        return fallback
    text = doc.split("\n\n")[0].replace("\n", " ")
    return text.split(". ")[0].split("; ")[0].rstrip(".") + "."


def _methods(section_cls) -> list[Address]:
    found = []
    properties = {name for name, member in vars(section_cls).items() if isinstance(member, property)}
    for name, member in vars(section_cls).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        hints = typing.get_type_hints(member)
        if not _is_command(name, hints) or not all(_carried(hint) for key, hint in hints.items() if key != "return"):
            continue
        # set_seed with a `seed` property: the address is the property's name, as for a field.
        shown = name[len("set_"):] if name.startswith("set_") and name[len("set_"):] in properties else name
        found.append(Address(f"{PREFIX}/{section_cls.name}/{shown}", "method", section_cls.name, name,
                             _callable_parameters(member),
                             summary=_first_line(member, f"calls {section_cls.name}.{name}()")))
    return found


def _commands() -> list[Address]:
    from ..controller import Controller
    found = []
    for group, shown, method in CONTROLLER_COMMANDS:
        function = getattr(Controller, method)
        found.append(Address(f"{PREFIX}/{group}/{shown}", "command", group, method, _callable_parameters(function),
                             summary=_first_line(function, f"calls the controller's {method}()")))
    return found


def _presets() -> list[Address]:
    return [
        Address(f"{PREFIX}/{PRESET_GROUP}/N", "preset", PRESET_GROUP, "recall",
                (Parameter("seconds", float, has_default=True),),
                summary="recalls preset N (0, 1, ...); with SECONDS, morphs there over that time"),
        Address(f"{PREFIX}/{PRESET_GROUP}/store", "preset", PRESET_GROUP, "store",
                (Parameter("n", int), Parameter("name", str, optional=True, has_default=True)),
                summary="stores the whole current state as preset n (saved with the session; one undo step)"),
    ]


@lru_cache(maxsize=1)
def address_table() -> tuple[Address, ...]:
    """Every address, in the order of the state's sections, then the commands and presets."""
    from ..state import SECTIONS
    table: list[Address] = []
    for section_cls in SECTIONS:
        hints = typing.get_type_hints(section_cls)
        table += [_setting(section_cls, field, hints[field]) for field in section_cls.field_names()]
        table += _methods(section_cls)
    table += _commands() + _presets()
    paths = [a.path for a in table]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:   # a field and a method of one name: a programming error, caught by the tests
        raise RuntimeError(f"two controls share the address {duplicates[0]}")
    return tuple(table)


@lru_cache(maxsize=1)
def _by_path() -> dict[str, Address]:
    return {a.path: a for a in address_table() if a.kind != "preset"}


def resolve(path: str) -> tuple[Address, int | None]:
    """The address a message names, and the preset number for /explorer/preset/N; AddressError otherwise."""
    address = _by_path().get(path)
    if address is not None:
        return address, None
    preset_prefix = f"{PREFIX}/{PRESET_GROUP}/"
    if path.startswith(preset_prefix):
        rest = path[len(preset_prefix):]
        recall, store = (a for a in address_table() if a.kind == "preset")
        if rest == "store":
            return store, None
        if rest.isdigit():
            return recall, int(rest)
        raise AddressError(f"{path}: a preset address is {PREFIX}/{PRESET_GROUP}/N with N a whole number")
    raise AddressError(f"unknown address {path!r}; see `stylegan-explorer osc-addresses`")


def markdown_table() -> str:
    """The address table for the README."""
    lines = ["| Address | Arguments | What it does |", "| --- | --- | --- |"]
    for a in address_table():
        summary = a.summary.replace("|", "\\|")
        lines.append(f"| `{a.path}` | {a.arguments_text().replace('|', '/') or '-'} | {summary} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
