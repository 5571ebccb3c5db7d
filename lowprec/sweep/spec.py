"""What a sweep is: a TOML spec read into a :class:`Spec` and its grid points.

A spec has a ``[base]`` table (any :class:`~lowprec.training.TrainConfig`
setting), a ``[grid]`` table whose values are lists (the sweep runs their
product, first axis slowest) and any number of ``[[include]]`` tables, each one
extra point (``base`` updated by the table). Every value is checked on top of
``base`` by building a ``TrainConfig``, so a bad spec fails before anything
runs, with a ValueError naming the key and its line in the file.

A point is identified by :func:`point_key`: a hash of its canonical config (every
field, defaults included, floats as floats) and the lowprec version, so the same
run written two ways, or found again after a crash, has one key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from lowprec.training import TrainConfig

__all__ = ["Point", "Spec", "canonical_config", "lowprec_version", "point_key"]

_TABLES = ("base", "grid", "include")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z_\"'][\w.\"' -]*?)\s*\]\]?\s*(#.*)?$")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")
_KEY = re.compile(r"^\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z0-9_-]+))\s*=")


def lowprec_version() -> str:
    """The installed lowprec version (part of every point's key)."""
    try:
        return metadata.version("lowprec")
    except metadata.PackageNotFoundError:  # a bare source tree on sys.path
        return "unknown"


def canonical_config(config: TrainConfig) -> dict[str, Any]:
    """Every field of ``config`` as JSON-ready values, floats as floats.

    ``lr = 1`` and ``lr = 1.0`` are one run, so an int given for a float field
    is stored as a float; the policy is stored by name.
    """
    d = config.to_dict()
    for f in fields(TrainConfig):
        v = d[f.name]
        if "float" in str(f.type) and isinstance(v, int) and not isinstance(v, bool):
            d[f.name] = float(v)
    return d


def point_key(config: dict[str, Any], version: str | None = None) -> str:
    """The store key of a canonical config: a SHA-256 of it and the version."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    text += "\0" + (lowprec_version() if version is None else version)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Point:
    """One grid point: its key, its canonical config and the settings that
    make it a point (the grid axes' values or the include table)."""

    key: str
    config: dict[str, Any]
    label: dict[str, Any]

    def train_config(self) -> TrainConfig:
        """The :class:`~lowprec.training.TrainConfig` of the point."""
        return TrainConfig.from_dict(self.config)


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec; build it with :meth:`from_toml` or
    :meth:`from_dict`.

    Attributes
    ----------
    base : dict
        The settings shared by every point.
    grid : dict of str to list
        The axes; the points are their product (first axis slowest).
    include : list of dict
        Extra points, each ``base`` updated by one table.
    source : str
        Where the spec came from (a path, or ``"<dict>"``), for messages.

    Examples
    --------
    >>> spec = Spec.from_dict({"base": {"epochs": 1, "dataset": "blobs"},
    ...                        "grid": {"policy": ["fp32", "bf16_mixed"],
    ...                                 "lr": [0.1, 0.05]},
    ...                        "include": [{"policy": "fp16_mixed", "lr": 0.1}]})
    >>> [p.label for p in spec.points()][-2:]
    [{'policy': 'bf16_mixed', 'lr': 0.05}, {'policy': 'fp16_mixed', 'lr': 0.1}]
    """

    base: dict[str, Any]
    grid: dict[str, list[Any]]
    include: list[dict[str, Any]]
    source: str = "<dict>"

    @classmethod
    def from_toml(cls, path: str | Path) -> Spec:
        """Read and validate the TOML spec at ``path``."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"spec {str(path)!r}: cannot read it ({exc})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"spec {str(path)!r}: not valid TOML: {exc}") from None
        return cls._validated(data, str(path), _key_lines(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        """Validate a spec given as a dict of the TOML's tables."""
        if not isinstance(data, dict):
            raise TypeError(f"spec must be a dict of tables, got {type(data).__name__}")
        return cls._validated(data, "<dict>", {})

    @classmethod
    def _validated(cls, data: dict[str, Any], source: str, lines: dict) -> Spec:
        def where(*key: object) -> str:
            line = lines.get(key)
            dotted = "".join(
                f"[{k}]" if isinstance(k, int) else f".{k}" for k in key
            ).lstrip(".")
            return f"{source}: {dotted}" + (f" (line {line})" if line else "")

        for table in data:
            if table not in _TABLES:
                raise ValueError(
                    f"{where(table)}: unknown table; a spec has [base], [grid] "
                    "and [[include]]"
                )
        base = _table(data, "base", dict, where)
        grid = _table(data, "grid", dict, where)
        include = _table(data, "include", list, where)
        known = {f.name for f in fields(TrainConfig)}

        def check(table: tuple, settings: dict[str, Any], on: dict) -> None:
            for key, value in settings.items():
                if key not in known:
                    raise ValueError(
                        f"{where(*table, key)}: unknown setting {key!r}; known: "
                        f"{', '.join(sorted(known))}"
                    )
                _build({**on, key: value}, where(*table, key))

        check(("base",), base, {})
        _build(base, where("base"))
        for axis, values in grid.items():
            if not isinstance(values, list):
                raise ValueError(
                    f"{where('grid', axis)}: a grid axis must be a list of values, "
                    f"got {type(values).__name__} {values!r}"
                )
            if not values:
                raise ValueError(f"{where('grid', axis)}: empty list of values")
            for value in values:
                check(("grid",), {axis: value}, base)
        for i, extra in enumerate(include):
            if not isinstance(extra, dict):
                raise ValueError(f"{where('include')}: each [[include]] is a table")
            check(("include", i), extra, base)
        if not grid and not include:
            raise ValueError(
                f"{source}: empty grid: [grid] has no axes and there is no "
                "[[include]], so the sweep has no points"
            )
        spec = cls(base=base, grid=grid, include=include, source=source)
        spec.points()  # a combination may be invalid although each value is valid
        return spec

    def points(self) -> list[Point]:
        """The points: the grid's product, then the includes; duplicates (the
        same canonical config) kept once, in first-seen order."""
        labels = (
            [
                dict(zip(self.grid, combo, strict=True))
                for combo in itertools.product(*self.grid.values())
            ]
            if self.grid
            else []
        )
        labels += [dict(extra) for extra in self.include]
        seen: dict[str, Point] = {}
        for label in labels:
            settings = {**self.base, **label}
            config = canonical_config(_build(settings, f"{self.source}: {label}"))
            key = point_key(config)
            seen.setdefault(key, Point(key=key, config=config, label=label))
        return list(seen.values())


def _table(data: dict, name: str, kind: type, where: Any) -> Any:
    value = data.get(name, kind())
    if not isinstance(value, kind):
        shape = "a table [name]" if kind is dict else "an array of tables [[name]]"
        raise ValueError(
            f"{where(name)}: must be {shape.replace('name', name)}, "
            f"got {type(value).__name__}"
        )
    return value


def _build(settings: dict[str, Any], where: str) -> TrainConfig:
    try:
        return TrainConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _key_lines(text: str) -> dict[tuple, int]:
    """(table, key) -> line number, and (table, i, key) for the i-th include.

    tomllib does not report where a value came from; this scan of the headers
    and ``key =`` lines is enough for the flat tables a spec has.
    """
    lines: dict[tuple, int] = {}
    table: tuple = ()
    n_include, depth = -1, 0
    for number, line in enumerate(text.splitlines(), start=1):
        bare = _STRING.sub('""', line).split("#")[0]
        if depth > 0:  # inside a multi-line array value
            depth += bare.count("[") - bare.count("]")
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            name = header.group(2).strip("\"'")
            if header.group(1) == "[[" and name == "include":
                n_include += 1
                table = ("include", n_include)
            else:
                table = (name,)
            lines.setdefault(table[:1], number)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key and table:
            name = next(g for g in key.groups() if g)
            lines.setdefault((*table, name), number)
            value = bare.split("=", 1)[1]
            depth = value.count("[") - value.count("]")
    return lines
