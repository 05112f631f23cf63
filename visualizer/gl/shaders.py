"""GLSL programs from shaders/*.glsl, recompiled when their files change.

One file per program: `#version` on line 1, stages in `#ifdef VERTEX_SHADER` / `FRAGMENT_SHADER`
blocks, shared code pulled in with `#include "lib/x.glsl"`. `#line` directives keep the GL log's
line numbers pointing into the right file. A broken edit keeps the last good program running
and its error is shown on screen until the file is fixed.
"""

import re
from pathlib import Path

import moderngl

from visualizer.paths import data_dir

SHADER_DIR = data_dir("shaders")
STAGES = {"vertex_shader": "VERTEX_SHADER", "geometry_shader": "GEOMETRY_SHADER",
          "fragment_shader": "FRAGMENT_SHADER"}  # fmt: skip
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')
_LOG_LOCATION = re.compile(r"\b(\d+):(\d+)\(")  # Mesa: "0:12(3): error: ..."


class ShaderError(Exception):
    """A program failed to compile or link; the message names the file and line."""


def _expand(path: Path, files: list[Path]) -> str:
    """The file's text with #includes inlined and #line directives after each one."""
    files.append(path)
    number = len(files) - 1
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _INCLUDE.match(line)
        if match:
            out.append(_expand(path.parent / match.group(1), files))
            out.append(f"#line {lineno + 1} {number}")
        else:
            out.append(line)
    if number:  # included text: number its lines from 1 in its own file
        out.insert(0, f"#line 1 {number}")
    return "\n".join(out)


def _stage_source(text: str, define: str, variant: tuple[str, ...] = ()) -> str:
    version, _, rest = text.partition("\n")
    defines = "".join(f"#define {d}\n" for d in (define, *variant))
    return f"{version}\n{defines}#line 2 0\n{rest}"


def _name_files(log: str, files: list[Path]) -> str:
    def replace(m: re.Match) -> str:
        index = int(m.group(1))
        name = files[index].name if index < len(files) else m.group(1)
        return f"{name}:{m.group(2)}("

    return _LOG_LOCATION.sub(replace, log)


def compile_file(
    ctx: moderngl.Context, path: Path, variant: tuple[str, ...] = ()
) -> tuple[moderngl.Program, list[Path]]:
    """Compile one program file, with the `variant`'s names #defined; returns it and every
    file it read (for change detection)."""
    files: list[Path] = []
    try:
        text = _expand(path, files)
    except OSError as exc:
        raise ShaderError(f"{path.name}: cannot read: {exc}") from None
    if not text.startswith("#version"):
        raise ShaderError(f"{path.name}:1: the first line must be #version")
    stages = {arg: _stage_source(text, define, variant) for arg, define in STAGES.items()
              if define in text}  # fmt: skip
    try:
        return ctx.program(**stages), files
    except moderngl.Error as exc:
        log = _name_files(str(exc), files).strip().splitlines()
        detail = " | ".join(line.strip() for line in log if "error" in line.lower()) or log[-1]
        located = ".glsl:" in detail  # Mesa's log, with file names put in
        raise ShaderError(detail if located else f"{path.name}: {detail}") from None


class LiveProgram:
    """A program that may be swapped by a reload; `generation` tells vertex arrays to rebuild."""

    def __init__(self, program: moderngl.Program) -> None:
        self.program = program
        self.generation = 0

    def set(self, name: str, value) -> None:
        """Set a uniform if the program uses it (edits may remove uniforms; that is fine)."""
        member = self.program.get(name, None)
        if member is not None:
            member.value = value

    def write(self, name: str, data: bytes) -> None:
        """Set a uniform from raw bytes (matrices), if the program uses it."""
        member = self.program.get(name, None)
        if member is not None:
            member.write(data)

    def swap(self, program: moderngl.Program) -> None:
        self.program.release()
        self.program = program
        self.generation += 1


class LiveVertexArray:
    """A vertex array that follows its program across reloads."""

    def __init__(self, ctx: moderngl.Context, live: LiveProgram, content: list, index=None):
        self._ctx, self._live, self._content, self._index = ctx, live, content, index
        self._vao: moderngl.VertexArray | None = None
        self._generation = -1

    def render(self, mode: int, vertices: int = -1, instances: int = -1) -> None:
        if self._generation != self._live.generation:
            if self._vao is not None:
                self._vao.release()
            self._vao = self._ctx.vertex_array(
                self._live.program, self._content, self._index, skip_errors=True
            )
            self._generation = self._live.generation
        self._vao.render(mode, vertices=vertices, instances=instances)

    def release(self) -> None:
        if self._vao is not None:
            self._vao.release()


class ShaderLibrary:
    """Compiles programs by name (shaders/<name>.glsl) and recompiles them when files change."""

    def __init__(self, ctx: moderngl.Context, folder: Path = SHADER_DIR) -> None:
        self.ctx, self.folder = ctx, folder
        self._programs: dict[str, LiveProgram] = {}
        self._files: dict[str, list[Path]] = {}
        self._stamps: dict[Path, float] = {}
        self.errors: dict[str, str] = {}  # program name → its current compile error

    def get(self, name: str) -> LiveProgram:
        """The program, compiled now; a first compile that fails raises ShaderError. A name
        such as "upscale+SPLIT" is a variant: shaders/upscale.glsl with SPLIT #defined
        (a CPU renderer runs both sides of a uniform branch, texture reads and all, so a
        choice made once a frame is compiled in rather than branched on)."""
        if name not in self._programs:
            program, files = self._compile(name)
            self._programs[name] = LiveProgram(program)
            self._remember(name, files)
        return self._programs[name]

    def _compile(self, name: str) -> tuple[moderngl.Program, list[Path]]:
        base, *variant = name.split("+")
        return compile_file(self.ctx, self.folder / f"{base}.glsl", tuple(variant))

    def vertex_array(self, name: str, content: list, index=None) -> LiveVertexArray:
        return LiveVertexArray(self.ctx, self.get(name), content, index)

    def _remember(self, name: str, files: list[Path]) -> None:
        self._files[name] = files
        for f in files:
            self._stamps[f] = _mtime(f)

    def reload_changed(self) -> list[str]:
        """Recompile programs whose files changed; returns the files' names (without .glsl)
        that were reloaded."""
        changed = {f for f in self._stamps if _mtime(f) != self._stamps[f]}
        reloaded = []
        for name, files in self._files.items():
            if not changed.intersection(files):
                continue
            try:
                program, new_files = self._compile(name)
            except ShaderError as exc:
                self.errors[name] = str(exc)
                for f in files:
                    self._stamps[f] = _mtime(f)  # report once per edit, not every poll
                continue
            self._programs[name].swap(program)
            self._remember(name, new_files)
            self.errors.pop(name, None)
            reloaded.append(name.split("+")[0])
        return list(dict.fromkeys(reloaded))

    def release(self) -> None:
        for live in self._programs.values():
            live.program.release()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0
