"""A pickle reader that makes plain data only, within bounds, and never lets a file touch code.

Python's unpickler imports whatever a file names and applies BUILD (`__setstate__`, `__dict__` updates) to
whatever object is on its stack, globals included: a file could change a function or class for the whole
process. This machine runs the pickle opcodes itself:
- a global is only ever a `GlobalRef` (module, name, our own stand-in), never the object of that name; only the
  stand-ins of the caller's table can be called (REDUCE, NEWOBJ), and a global not in the table is refused;
- BUILD reaches only `Record` instances, the records a stand-in made for this load; each record applies a state
  it checks field by field;
- every length is checked against the bytes left before it is read, integers are short, and the operations, the
  stack, open MARKs and the nesting of the result are bounded (`limits`); the loaded data is then walked once
  with a visit budget proportional to the operations that made it, which stops data that repeats a shared list
  inside itself ("billion laughs") and cycles before anything expands them.
Every failure is a NetworkLoadError with one line.
"""
from __future__ import annotations

import codecs
import contextvars
import struct
from typing import Any, Callable, Mapping

from . import limits
from .errors import NetworkLoadError, quote


class ForbiddenGlobal(NetworkLoadError):
    """The file asked for a global that is not on the loader's allowlist."""

    def __init__(self, module: str, name: str):
        super().__init__(f"refused to load: the file asks for '{module}.{name}', which is not allowed "
                         f"(nothing from the file was run)")
        self.module, self.name = module, name


class GlobalRef:
    """A global the file named: its name and our stand-in for it (None: a name passed as data, not callable)."""
    __slots__ = ("module", "name", "make")

    def __init__(self, module: str, name: str, make: Callable | None):
        self.module, self.name, self.make = module, name, make

    @property
    def key(self) -> tuple[str, str]:
        return self.module, self.name

    def __repr__(self):
        return f"{self.module}.{self.name}"


class Record:
    """An object a stand-in made for this load. Only records take BUILD's state, through `set_state`."""

    def set_state(self, state) -> None:
        raise NetworkLoadError(f"refused to load: the file sets the state of a {type(self).__name__}, which has "
                               f"none")

    def children(self) -> tuple:
        """The values this record holds, for the walk that bounds the loaded data."""
        return ()


class LoadCancelled(NetworkLoadError):
    """The caller asked to stop loading (a newer file was chosen, the window closes)."""

    def __init__(self):
        super().__init__("loading was cancelled")


# The caller's "stop now?" question for the load running in this thread (explorer.formats.load_network's
# `cancelled`), asked at every budget checkpoint: about every thousand pickle operations.
cancel_check: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("cancel_check", default=None)


def check_cancelled() -> None:
    check = cancel_check.get()
    if check is not None and check():
        raise LoadCancelled()


class Budget:
    """Pickle operations left for one file, shared by the pickles nested in it (tensor records)."""

    def __init__(self, operations: int = limits.MAX_PICKLE_OPERATIONS):
        self.operations_left = operations

    def spend(self, count: int) -> None:
        check_cancelled()
        self.operations_left -= count
        if self.operations_left < 0:
            raise NetworkLoadError(f"refused to load: the file holds more than {limits.MAX_PICKLE_OPERATIONS:,} "
                                   f"pickle operations, far more than any network file")


# What a dictionary key or set item may be: hashing anything nested recurses in C without a depth check (a
# tuple nested 300,000 deep crashes the interpreter), and network files key their tables by names and numbers.
PLAIN_KEY_TYPES = (str, int, float, bool, type(None), bytes)


def check_key(value) -> None:
    if type(value) in PLAIN_KEY_TYPES or isinstance(value, GlobalRef):
        return
    if type(value) is tuple and all(type(item) in PLAIN_KEY_TYPES for item in value):
        return
    raise NetworkLoadError(f"the file is damaged: a {type(value).__name__} used as a dictionary key or set item")


def _damaged(what: str, position: int) -> NetworkLoadError:
    return NetworkLoadError(f"the file is truncated or damaged ({what} at byte {position})")


class PickleMachine:
    """Runs one pickle of `data` from `offset`. `allowed` maps (module, name) to a stand-in callable, or to None
    for globals that may only appear as arguments; `persistent_load` resolves persistent ids (None: refused)."""

    def __init__(self, data: bytes, allowed: Mapping[tuple[str, str], Callable | None], offset: int = 0,
                 persistent_load: Callable[[Any], Any] | None = None, budget: Budget | None = None):
        self.data = data
        self.position = offset
        self.allowed = allowed
        self.persistent_load = persistent_load
        self.budget = budget or Budget()
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict[int, Any] = {}
        self.operations = 0

    # -- reading the bytes -------------------------------------------------------------------------------------

    def _take(self, count: int) -> bytes:
        start = self.position
        if count < 0 or start + count > len(self.data):
            raise _damaged(f"a value of {count:,} bytes where {len(self.data) - start:,} are left", start)
        self.position = start + count
        return self.data[start:start + count]

    def _unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self._take(size))[0]

    def _line(self) -> bytes:
        end = self.data.find(b"\n", self.position, self.position + limits.MAX_TEXT_LINE)
        if end < 0:
            raise _damaged("a text value without its end", self.position)
        line = self.data[self.position:end]
        self.position = end + 1
        return line

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _damaged("text that is not UTF-8", self.position) from None

    def _sized(self, fmt: str) -> bytes:
        return self._take(self._unpack(fmt))

    # -- the stack ---------------------------------------------------------------------------------------------

    def _push(self, value) -> None:
        self.stack.append(value)   # its size is checked every CHECK_EVERY operations

    def _pop(self):
        if not self.stack:
            raise _damaged("an operation on an empty stack", self.position)
        return self.stack.pop()

    def _top(self):
        if not self.stack:
            raise _damaged("an operation on an empty stack", self.position)
        return self.stack[-1]

    def _pop_mark(self) -> list:
        if not self.marks:
            raise _damaged("a MARK that was never set", self.position)
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _memo_get(self, index: int):
        try:
            return self.memo[index]
        except KeyError:
            raise _damaged(f"a reference to memo entry {index} that was never stored", self.position) from None

    # -- calls and state ---------------------------------------------------------------------------------------

    def _global(self, module, name) -> GlobalRef:
        if not isinstance(module, str) or not isinstance(name, str):
            raise _damaged("a global whose name is not text", self.position)
        if module == "__builtin__":   # protocols 0 to 2 spell it so, for Python 2
            module = "builtins"
        key = (module, name)
        if key not in self.allowed:
            raise ForbiddenGlobal(module, name)
        return GlobalRef(module, name, self.allowed[key])

    def _call(self, target, args):
        if not isinstance(target, GlobalRef):
            raise NetworkLoadError(f"refused to load: the file calls a {type(target).__name__}, not a known global")
        if target.make is None:
            raise NetworkLoadError(f"refused to load: the file calls '{target}', which is allowed only as data")
        if not isinstance(args, tuple):
            raise _damaged(f"arguments of {target} that are not a tuple", self.position)
        try:
            return target.make(*args)
        except NetworkLoadError:
            raise
        except Exception as error:   # a stand-in given arguments no writer makes
            raise NetworkLoadError(f"the file is damaged: {target} cannot be made from {quote(args)} "
                                   f"({type(error).__name__}: {error})") from None

    def _build(self) -> None:
        state = self._pop()
        target = self._top()
        if not isinstance(target, Record):
            name = str(target) if isinstance(target, GlobalRef) else type(target).__name__
            raise NetworkLoadError(f"refused to load: the file sets the state of '{name}'; only records this "
                                   f"loader made may take a state")
        try:
            target.set_state(state)
        except NetworkLoadError:
            raise
        except Exception as error:
            raise NetworkLoadError(f"the file is damaged: the state of a {type(target).__name__} is not valid "
                                   f"({type(error).__name__}: {error})") from None

    def _persistent(self, pid):
        if self.persistent_load is None:
            raise NetworkLoadError("refused to load: the pickle refers to data outside itself (a persistent id)")
        return self.persistent_load(pid)

    def _set_items(self, target, items) -> None:
        if not isinstance(target, dict):
            raise _damaged(f"dictionary items added to a {type(target).__name__}", self.position)
        if len(items) % 2:
            raise _damaged("a key without its value", self.position)
        for i in range(0, len(items), 2):
            check_key(items[i])
            target[items[i]] = items[i + 1]

    def _hashable(self, make, items):
        for item in items:
            check_key(item)
        return make(items)

    # -- the loop ----------------------------------------------------------------------------------------------

    def _checkpoint(self, operations: int) -> None:
        """Every CHECK_EVERY operations: the shared budget and the stack (which grows by at most one a step)."""
        self.budget.spend(operations)
        if len(self.stack) > limits.MAX_PICKLE_STACK:
            raise NetworkLoadError(f"refused to load: the pickle stacks more than {limits.MAX_PICKLE_STACK:,} "
                                   f"values")

    def load(self) -> Any:
        """The pickled value; `self.position` is then just after its STOP."""
        data, end, dispatch = self.data, len(self.data), _DISPATCH
        operations = 0
        try:
            while True:
                position = self.position
                if position >= end:
                    raise _damaged("the end of the data before STOP", position)
                handler = dispatch[data[position]]
                self.position = position + 1
                operations += 1
                if not operations % CHECK_EVERY:
                    self._checkpoint(CHECK_EVERY)
                if handler is None:
                    raise _damaged(f"pickle opcode {bytes([data[position]])!r} that network files never use", position)
                if handler is _stop:
                    value = self._pop()
                    break
                handler(self)
        except RecursionError:
            raise NetworkLoadError("refused to load: the pickle nests deeper than any network file") from None
        except MemoryError:
            raise NetworkLoadError("not enough memory to read this file") from None
        self.operations = operations
        self._checkpoint(operations % CHECK_EVERY)
        check_data(value, max(limits.MIN_DATA_VISITS, limits.DATA_VISITS_PER_OPERATION * operations))
        return value


CHECK_EVERY = 1024


def check_data(value, visits: int) -> None:
    """Walks the loaded data without recursion: refuses nesting beyond MAX_DATA_DEPTH and more than `visits`
    container items in all (what shared lists inside shared lists, and cycles, expand into)."""
    stack = [(value, 0)]
    left = visits
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = item
        elif isinstance(item, Record):
            children = item.children()
        else:
            continue
        if depth >= limits.MAX_DATA_DEPTH:
            raise NetworkLoadError(f"refused to load: the file's data nests more than {limits.MAX_DATA_DEPTH} "
                                   f"levels deep, far more than any network file")
        left -= len(children)
        if left < 0:
            raise NetworkLoadError("refused to load: the file's data repeats shared parts inside each other (or "
                                   "refers to itself), which would expand far beyond the file")
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list, tuple, set, frozenset, Record)))


# -- opcodes -----------------------------------------------------------------------------------------------------

def _stop(m): pass   # handled in the loop


def _byte(m) -> int:
    position = m.position
    if position >= len(m.data):
        raise _damaged("a value of 1 byte where 0 are left", position)
    m.position = position + 1
    return m.data[position]


def _mark(m):
    if len(m.marks) >= limits.MAX_PICKLE_MARKS:
        raise NetworkLoadError(f"refused to load: the pickle opens more than {limits.MAX_PICKLE_MARKS} MARKs")
    m.marks.append(m.stack)
    m.stack = []


def _pop(m): m._pop()
def _pop_mark(m): m._pop_mark()
def _dup(m): m._push(m._top())
def _none(m): m.stack.append(None)
def _true(m): m.stack.append(True)
def _false(m): m.stack.append(False)
def _binint(m): m._push(m._unpack("<i"))
def _binint1(m): m.stack.append(_byte(m))
def _binint2(m): m._push(m._unpack("<H"))
def _binfloat(m): m._push(m._unpack(">d"))


def _long_bytes(m, fmt):
    count = m._unpack(fmt)
    if count > limits.MAX_INT_BYTES:
        raise _damaged(f"an integer of {count:,} bytes", m.position)
    m._push(int.from_bytes(m._take(count), "little", signed=True))


def _long1(m): _long_bytes(m, "<B")
def _long4(m): _long_bytes(m, "<i")


def _text_number(m, parse, booleans: bool = False):
    line = m._line().strip()
    if line.endswith(b"L"):
        line = line[:-1]
    if len(line) > limits.MAX_INT_BYTES * 3:
        raise _damaged("a number of too many digits", m.position)
    if booleans and line in (b"00", b"01"):   # protocol 0's spelling of False and True
        m.stack.append(line == b"01")
        return
    try:
        m.stack.append(parse(line.decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        raise _damaged("a number that does not parse", m.position) from None


def _int(m): _text_number(m, int, booleans=True)
def _long(m): _text_number(m, int)
def _float(m): _text_number(m, float)


def _string(m):
    raw = m._line().strip()
    if len(raw) < 2 or raw[:1] != raw[-1:] or raw[:1] not in b"'\"":
        raise _damaged("a quoted string without its quotes", m.position)
    try:
        m.stack.append(codecs.escape_decode(raw[1:-1])[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise _damaged("a quoted string that does not decode", m.position) from None


def _binstring(m): m._push(m._sized("<i").decode("latin-1"))
def _short_binstring(m): m._push(m._sized("<B").decode("latin-1"))


def _unicode(m):
    try:
        m._push(m._line().decode("raw_unicode_escape"))
    except UnicodeDecodeError:
        raise _damaged("text that does not decode", m.position) from None


def _binunicode(m): m._push(m._text(m._sized("<I")))
def _short_binunicode(m): m._push(m._text(m._sized("<B")))
def _binunicode8(m): m._push(m._text(m._sized("<Q")))
def _binbytes(m): m._push(m._sized("<I"))
def _short_binbytes(m): m._push(m._sized("<B"))
def _binbytes8(m): m._push(m._sized("<Q"))
def _bytearray8(m): m._push(bytearray(m._sized("<Q")))
def _empty_list(m): m.stack.append([])
def _empty_dict(m): m.stack.append({})
def _empty_tuple(m): m.stack.append(())
def _empty_set(m): m.stack.append(set())
def _list(m): m._push(m._pop_mark())
def _tuple(m): m._push(tuple(m._pop_mark()))


def _tuple_n(count):
    def handler(m):
        if len(m.stack) < count:
            raise _damaged("a tuple of values that are not there", m.position)
        items = tuple(m.stack[-count:])
        del m.stack[-count:]
        m._push(items)
    return handler


def _dict(m):
    items = m._pop_mark()
    target = {}
    m._set_items(target, items)
    m._push(target)


def _frozenset(m): m._push(m._hashable(frozenset, m._pop_mark()))


def _append(m):
    value = m._pop()
    target = m._top()
    if not isinstance(target, list):
        raise _damaged(f"an item appended to a {type(target).__name__}", m.position)
    target.append(value)


def _appends(m):
    items = m._pop_mark()
    target = m._top()
    if not isinstance(target, list):
        raise _damaged(f"items appended to a {type(target).__name__}", m.position)
    target.extend(items)


def _setitem(m):
    value = m._pop()
    key = m._pop()
    m._set_items(m._top(), [key, value])


def _setitems(m):
    items = m._pop_mark()
    m._set_items(m._top(), items)


def _additems(m):
    items = m._pop_mark()
    target = m._top()
    if not isinstance(target, set):
        raise _damaged(f"set items added to a {type(target).__name__}", m.position)
    m._hashable(target.update, items)


def _get(m):
    try:
        m._push(m._memo_get(int(m._line())))
    except ValueError:
        raise _damaged("a memo reference that is not a number", m.position) from None


def _binget(m): m.stack.append(m._memo_get(_byte(m)))
def _long_binget(m): m._push(m._memo_get(m._unpack("<I")))


def _put(m):
    try:
        m.memo[int(m._line())] = m._top()
    except ValueError:
        raise _damaged("a memo index that is not a number", m.position) from None


def _binput(m): m.memo[_byte(m)] = m._top()
def _long_binput(m): m.memo[m._unpack("<I")] = m._top()
def _memoize(m): m.memo[len(m.memo)] = m._top()


def _global_text(m):
    module = m._text(m._line())
    name = m._text(m._line())
    m._push(m._global(module, name))


def _stack_global(m):
    name = m._pop()
    module = m._pop()
    m._push(m._global(module, name))


def _reduce(m):
    args = m._pop()
    target = m._pop()
    m._push(m._call(target, args))


def _newobj(m):
    args = m._pop()
    target = m._pop()
    m._push(m._call(target, args))


def _newobj_ex(m):
    kwargs = m._pop()
    args = m._pop()
    target = m._pop()
    if kwargs != {}:
        raise NetworkLoadError(f"refused to load: the file makes '{quote(target)}' with keyword arguments")
    m._push(m._call(target, args))


def _build(m): m._build()
def _persid(m): m._push(m._persistent(m._text(m._line())))
def _binpersid(m): m._push(m._persistent(m._pop()))


def _proto(m):
    version = m._unpack("<B")
    if version > 5:
        raise _damaged(f"pickle protocol {version}", m.position)


def _frame(m):
    size = m._unpack("<Q")
    if m.position + size > len(m.data):
        raise _damaged(f"a frame of {size:,} bytes where {len(m.data) - m.position:,} are left", m.position)


_HANDLERS: dict[bytes, Callable] = {
    b"(": _mark, b".": _stop, b"0": _pop, b"1": _pop_mark, b"2": _dup, b"F": _float, b"I": _int, b"J": _binint,
    b"K": _binint1, b"L": _long, b"M": _binint2, b"N": _none, b"P": _persid, b"Q": _binpersid, b"R": _reduce,
    b"S": _string, b"T": _binstring, b"U": _short_binstring, b"V": _unicode, b"X": _binunicode, b"a": _append,
    b"b": _build, b"c": _global_text, b"d": _dict, b"}": _empty_dict, b"e": _appends, b"g": _get, b"h": _binget,
    b"j": _long_binget, b"l": _list, b"]": _empty_list, b"p": _put, b"q": _binput, b"r": _long_binput,
    b"s": _setitem, b"t": _tuple, b")": _empty_tuple, b"u": _setitems, b"G": _binfloat, b"\x80": _proto,
    b"\x81": _newobj, b"\x85": _tuple_n(1), b"\x86": _tuple_n(2), b"\x87": _tuple_n(3), b"\x88": _true,
    b"\x89": _false, b"\x8a": _long1, b"\x8b": _long4, b"B": _binbytes, b"C": _short_binbytes,
    b"\x8c": _short_binunicode, b"\x8d": _binunicode8, b"\x8e": _binbytes8, b"\x8f": _empty_set, b"\x90": _additems,
    b"\x91": _frozenset, b"\x92": _newobj_ex, b"\x93": _stack_global, b"\x94": _memoize, b"\x95": _frame,
    b"\x96": _bytearray8,
}
_DISPATCH: list[Callable | None] = [_HANDLERS.get(bytes([code])) for code in range(256)]
