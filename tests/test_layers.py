"""The layers: no module of unispeech imports one of a layer above its own.

The package is one folder per layer (README's Layout); `LAYERS` orders them once, lowest first. A
module may import its own layer and those before it, never one after. Every import counts, those
inside functions and under `TYPE_CHECKING` included: a lazy import is a dependency all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unispeech

PACKAGE = Path(unispeech.__file__).resolve().parent

# Lowest first, each layer using only what comes before it: audio knows waveforms; the model knows
# tensors (its lengths follow audio's rates); weights fetch and assemble a model; evaluation's error
# rate comes before the tasks because correction's no-harm gate scores with it; the tasks run a
# loaded model; data (corpora, N-best lists, phoneme durations) reads the model's phonemes and the
# error rate; testing's tiny models take data's stand-in durations; training reads data and runs the
# tasks (its dev pass); the api facade loads weights and runs the tasks; interfaces and benchmarks
# are its clients, one layer because the eval commands are parsed with the CLI's flags and the CLI
# hands `unispeech eval` to them. The first row is shared by all: it imports nothing of unispeech.
LAYERS = (
    ("files", "dependencies", "samples"),
    ("audio",),
    ("model",),
    ("weights",),
    ("evaluation",),
    ("tasks",),
    ("data",),
    ("testing",),
    ("training",),
    ("api",),
    ("interfaces", "benchmarks"),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(path: Path) -> str | None:
    """The folder or top-level module a file of the package belongs to (None: the package's own
    `__init__`, which imports nothing: its public names load lazily, by their modules' names)."""
    relative = path.relative_to(PACKAGE)
    if relative == Path("__init__.py"):
        return None
    return relative.parts[0].removesuffix(".py")


def imported_modules(path: Path, source: str) -> list[tuple[int, str]]:
    """`(line, module)` of every import in `source`, relative ones resolved against `path`."""
    package = ["unispeech", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(name for name in (base, node.module) if name)
            found.append((node.lineno, module))
            if module == "unispeech":  # `from unispeech import x`: a module, or a lazy public name
                found += [(node.lineno, _public_module(alias.name)) for alias in node.names]
    return sorted(found)


def _public_module(name: str) -> str:
    if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file():
        return f"unispeech.{name}"
    return unispeech._EXPORTS[name]


def upward_imports(path: Path, source: str) -> list[str]:
    """The imports of `source` (the text of package file `path`) that reach a higher layer."""
    own = part_of(path)
    if own is None:
        return []
    problems = []
    for line, module in imported_modules(path, source):
        names = module.split(".")
        if names[0] != "unispeech" or len(names) < 2:
            continue
        if RANK.get(names[1], len(LAYERS)) > RANK[own]:
            where = path.relative_to(PACKAGE.parent)
            problems.append(f"{where}:{line} imports {module}: {own} is a layer below {names[1]}")
    return problems


def _package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_folder_and_top_level_module_has_a_layer():
    parts = {part_of(path) for path in _package_files()} - {None}
    assert parts == set(RANK), "place every folder and top-level module in LAYERS, and list no other"


def test_no_module_imports_a_higher_layer():
    problems = [problem for path in _package_files() for problem in upward_imports(path, path.read_text())]
    assert not problems, "\n".join(problems)


def test_an_upward_import_is_found_wherever_it_is_written():
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
from unispeech.audio.features import load_audio
from . import lengths
if TYPE_CHECKING:
    from unispeech.weights.cache import cache_dir
def run():
    import unispeech.interfaces.cli
    from unispeech import load
    from ..tasks import decoding
"""
    problems = upward_imports(PACKAGE / "model" / "example.py", source)
    assert [problem.split(" imports ")[1].split(":")[0] for problem in problems] == [
        "unispeech.weights.cache",
        "unispeech.interfaces.cli",
        "unispeech.api",
        "unispeech.tasks",
    ]
