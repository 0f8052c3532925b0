"""Reference-free views of the spec and state StructRefs, for the event loop.

A StructRef is a reference-counted pointer: every call that passes one, and every array read
from one, costs numba an atomic increment and decrement (in the event loop, tens per event:
about 40 % of the time of a replication). ``view(ref)`` is the StructRef's payload pointer
under a type with no reference count, and reading an array field through it gives the array
with a null meminfo (so numba's reference counting on it is a null test). Fields read the
same as on the StructRef (``st.LF``), so the kernel's code reads the same either way.

Whoever makes a view keeps the StructRef alive while the view is used (``keep``).
Views are read-only at the field level (arrays are written through, as before).

``plain(x)`` is the other half of keeping calls cheap: numba compiles a function once per
literal constant passed to it (the event kinds and constant arguments of ``schedule``'s call
sites, as in ``schedule(st, t, EV_START, pid, 0)``, made twelve copies of it), and a hot loop
that jumps between copies of the same code spends the instruction cache on them. A function
called with constants takes them through ``plain`` in a one-line inline wrapper, so one
compiled copy serves every call site.

Third, indexing. A table whose row length is fixed (the state's lead and people rows, the
event list's rows; the spec's distribution rows and routes: ``fixed_columns`` of the struct
type) is given by a view with that length as a constant, so ``LI[lead, L_STAGE]`` is a shift
and an add rather than a multiplication by a length loaded at run time (3% of the event
loop; ``pack`` and the workspace make the tables so, and a test checks both). And numba
indexes arrays as Python does: a negative index counts from the end, so every ``a[i]`` with
a signed i tests its sign and adds the length (about 9% of the event loop's time, mostly as
latency on chains like person -> lead -> stage). The kernel's indexes are never negative (a
lead, a person, a stage, a slot, a week are row numbers), so ``index_as_is()`` compiles the
kernel's own functions without that step, and only them: the functions of this package are
recognised by their compiled names, and any other numba code in the process keeps Python's
indexing. tests/test_kernel.py runs the kernel with numba's bounds checking on, which
rejects a negative index there, so a negative index in the kernel is caught by the tests,
not read from before an array's start.
"""

from __future__ import annotations

from numba import njit
from numba.core import cgutils, imputils
from numba.core import types as nbt
from numba.core.datamodel import models
from numba.core.typing.templates import AttributeTemplate
from numba.extending import (
    infer_getattr,
    intrinsic,
    lower_getattr_generic,
    register_model,
)
from numba.np import arrayobj

KERNEL_PREFIX = "_ZN6gtmsim7engines6kernel"  # how numba's compiled names of this package begin


class ViewType(nbt.Type):
    """A borrowed pointer to the payload of a StructRef of type `struct_type`."""

    def __init__(self, struct_type):
        self.struct_type = struct_type
        super().__init__(name=f"View[{struct_type}]")

    @property
    def field_dict(self):
        return self.struct_type.field_dict


@register_model(ViewType)
class ViewModel(models.OpaqueModel):
    """A raw i8* (the payload pointer)."""


@infer_getattr
class ViewAttributes(AttributeTemplate):
    key = ViewType

    def generic_resolve(self, typ, attr):
        return typ.field_dict.get(attr)


@lower_getattr_generic(ViewType)
def _view_getattr(context, builder, typ, val, attr):
    valtype = typ.struct_type.get_data_type()
    alloc = context.data_model_manager[valtype].get_value_type()
    data = cgutils.create_struct_proxy(valtype)(
        context, builder, ref=builder.bitcast(val, alloc.as_pointer()))
    ret = getattr(data, attr)
    fty = typ.field_dict[attr]
    if isinstance(fty, nbt.Array):
        ary = context.make_array(fty)(context, builder, value=ret)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        columns = getattr(typ.struct_type, "fixed_columns", {}).get(attr)
        if columns is not None and fty.ndim == 2 and fty.layout == "C":
            # a table whose row length is a constant: indexing computes row * columns as
            # a shift and an add instead of a multiplication by a length read at run time
            rows = cgutils.unpack_tuple(builder, ary.shape, 2)[0]
            size = context.get_abi_sizeof(context.get_data_type(fty.dtype))
            intp = ary.shape.type.element
            ary.shape = cgutils.pack_array(builder, [rows, intp(columns)])
            ary.strides = cgutils.pack_array(builder, [intp(columns * size), intp(size)])
        ret = ary._getvalue()
    elif not isinstance(fty, (nbt.Integer, nbt.Float, nbt.Boolean)):
        raise TypeError(f"a view reads arrays and numbers only, not {attr}: {fty}")
    return imputils.impl_ret_untracked(context, builder, fty, ret)


@intrinsic
def view(typingctx, ref):
    """The payload of StructRef `ref` as a ViewType (no reference taken)."""
    if not isinstance(ref, nbt.StructRef):
        return None

    def codegen(context, builder, sig, args):
        mi = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=args[0]).meminfo
        return context.nrt.meminfo_data(builder, mi)

    return ViewType(ref)(ref), codegen


@intrinsic
def plain(typingctx, x):
    """x as a plain value of its type (an int64 for a literal int, a bool for a literal bool),
    so that a function called with it is compiled once, not once per constant."""
    sig = nbt.unliteral(x)(x)

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[0], sig.args[0], sig.return_type)

    return sig, codegen


@njit(cache=True)
def keep(owner):
    """Does nothing: a use of `owner` that keeps it (and what views of it point to) alive up
    to here."""
    return None


def compiled_in_kernel(name: str) -> bool:
    """Whether compiled function `name` is one of the kernel's (its own code, with what numba
    inlines into it)."""
    return name.startswith(KERNEL_PREFIX)


def index_as_is() -> None:
    """Compile the kernel's integer indexes as they are, without Python's wraparound of negative
    ones (numba's other code is untouched). Installed once, at import; a numba without the hook
    this relies on keeps its own indexing, which is slower, never wrong."""
    python_style = getattr(arrayobj, "fix_integer_index", None)
    if python_style is None or getattr(python_style, "keeps_kernel_indexes", False):
        return

    def fix_integer_index(context, builder, idxty, idx, size):
        if idxty.signed and compiled_in_kernel(builder.function.name):
            return context.cast(builder, idx, idxty, nbt.intp)
        return python_style(context, builder, idxty, idx, size)

    fix_integer_index.keeps_kernel_indexes = True
    arrayobj.fix_integer_index = fix_integer_index


index_as_is()
