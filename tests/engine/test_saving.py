"""Saving does what the user means: links, read-only files, durability, leftovers, odd text, odd files."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.errors import ProjectError
from engine.fileio import STALE_AFTER_S, atomic_write, atomic_write_text
from engine.graph import Graph
from engine.project import Project, load_project, project_to_dict, save_project
from tests.engine.helpers import then, vector_input

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="links, modes and pipes as POSIX has them")


def small_project(name: str = "Net") -> Project:
    g = Graph()
    inp = vector_input(g, 4, name="input")
    dense = then(g, inp, "Dense", {"units": 3}, name="dense")
    then(g, dense, "ClassificationOutput", name="loss")
    return Project(name=name, graph=g)


def leftovers(folder: Path) -> list[str]:
    """Hidden files beside a project: temporaries and staged copies."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old (as a file left by a crash long ago would)."""
    st = path.stat()
    os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def run_child(code: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python at the repository root (60 s is a guard against a hang only)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60, **kwargs
    )


# ---------------------------------------------------------------------- links
@posix_only
def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "projects" / "net.json"
    real.parent.mkdir()
    save_project(small_project("Old"), real)
    link = tmp_path / "shortcut.json"
    link.symlink_to(real)
    save_project(small_project("New"), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_project(real).name == "New"
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


@posix_only
def test_saving_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "net.json"
    link.symlink_to(tmp_path / "real.json")
    save_project(small_project("New"), link)
    assert link.is_symlink() and load_project(tmp_path / "real.json").name == "New"


@posix_only
def test_saving_a_hard_linked_file_updates_every_name(tmp_path):
    first = tmp_path / "net.json"
    save_project(small_project("Old"), first)
    second = tmp_path / "also.json"
    os.link(first, second)
    inode = first.stat().st_ino
    save_project(small_project("New"), first)
    assert load_project(second).name == "New" and load_project(first).name == "New"
    assert first.stat().st_ino == second.stat().st_ino == inode
    assert leftovers(tmp_path) == []


@posix_only
def test_a_shorter_in_place_save_leaves_no_tail_of_the_old_content(tmp_path):
    first = tmp_path / "data.txt"
    atomic_write_text(first, "a long first version\n" * 50)
    os.link(first, tmp_path / "twin.txt")
    atomic_write_text(first, "short\n")
    assert (tmp_path / "twin.txt").read_text() == "short\n"


@posix_only
def test_a_crash_during_an_in_place_save_keeps_the_new_content_beside_it(tmp_path):
    """Killed while copying into a hard-linked file: the complete new content waits in the staged copy."""
    target = tmp_path / "data.txt"
    atomic_write_text(target, "old\n" * 1000)
    os.link(target, tmp_path / "twin.txt")
    child = run_child(
        f"""
        import os
        from engine import fileio

        def half_then_die(src, dst):
            with open(dst, "r+b") as fh:
                fh.write(b"x" * 10)
                fh.flush()
            os._exit(9)

        fileio._copy_into = half_then_die
        fileio.atomic_write_text({str(target)!r}, "new\\n" * 1000)
        """
    )
    assert child.returncode == 9, child.stderr
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(".data.txt.") and p.name.endswith(".new")]
    assert len(staged) == 1 and staged[0].read_text() == "new\n" * 1000
    assert target.read_text().startswith("x" * 10)  # the half-done copy
    age(staged[0], STALE_AFTER_S + 60)
    atomic_write_text(target, "newer\n")
    assert (tmp_path / "twin.txt").read_text() == "newer\n"
    assert leftovers(tmp_path) == []  # the next good save supersedes the staged copy


@posix_only
def test_a_failed_in_place_copy_says_where_the_new_content_is(tmp_path, monkeypatch):
    from engine import fileio

    target = tmp_path / "net.json"
    save_project(small_project("Old"), target)
    os.link(target, tmp_path / "twin.json")

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "_copy_into", full)
    with pytest.raises(ProjectError) as info:
        save_project(small_project("New"), target)
    (staged,) = [p for p in tmp_path.iterdir() if p.name.endswith(".new")]
    assert str(info.value) == f"net.json could not be saved: No space left on device; the complete new content is in {staged}"
    assert json.loads(staged.read_text())["name"] == "New"


# ---------------------------------------------------------------------- read-only
@posix_only
def test_a_read_only_project_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "net.json"
    save_project(small_project("Old"), path)
    path.chmod(0o444)
    before = path.read_bytes()
    with pytest.raises(ProjectError, match=r"net.json could not be saved: the file is read-only"):
        save_project(small_project("New"), path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []


@posix_only
@pytest.mark.parametrize("exists", [True, False])
def test_a_read_only_folder_is_refused(tmp_path, exists):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "net.json"
    if exists:
        save_project(small_project("Old"), path)
    folder.chmod(0o555)
    try:
        with pytest.raises(ProjectError, match=r"net.json could not be saved: the folder .*locked is read-only"):
            save_project(small_project("New"), path)
        assert sorted(p.name for p in folder.iterdir()) == (["net.json"] if exists else [])
    finally:
        folder.chmod(0o755)
    if exists:
        assert load_project(path).name == "Old"


def test_a_folder_in_the_way_is_refused(tmp_path):
    (tmp_path / "net.json").mkdir()
    with pytest.raises(ProjectError, match="net.json could not be saved"):
        save_project(small_project(), tmp_path / "net.json")
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------- durability
@posix_only
def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        steps.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        steps.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_project(small_project(), tmp_path / "net.json")
    assert "rename" in steps and "fsync file" in steps[: steps.index("rename")]
    assert "fsync folder" in steps[steps.index("rename") :]


@posix_only
def test_a_written_file_keeps_its_mode(tmp_path):
    path = tmp_path / "net.json"
    save_project(small_project(), path)
    path.chmod(0o640)
    save_project(small_project("New"), path)
    assert path.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------- leftovers of crashes
def test_stale_temporaries_of_this_target_are_removed_and_nothing_else(tmp_path):
    path = tmp_path / "net.json"
    stale = tmp_path / ".net.json.k3j4h5g6.tmp"
    fresh = tmp_path / ".net.json.abcd1234.tmp"
    other = tmp_path / ".other.json.k3j4h5g6.tmp"
    unlike = [tmp_path / ".net.json.backup.tmp", tmp_path / ".net.json.k3j4h5g6.tmp.keep", tmp_path / "net.json.tmp"]
    for p in [stale, fresh, other, *unlike]:
        p.write_bytes(b"half a project")
    for p in [stale, other, *unlike]:
        age(p, STALE_AFTER_S + 60)
    save_project(small_project(), path)
    assert not stale.exists()
    assert fresh.exists() and other.exists() and all(p.exists() for p in unlike)


@posix_only
def test_a_temporary_locked_by_a_live_writer_is_kept(tmp_path):
    busy = tmp_path / ".net.json.busy0000.tmp"
    busy.write_bytes(b"being written")
    age(busy, STALE_AFTER_S + 60)
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save_project(small_project(), tmp_path / "net.json")
        assert busy.exists()
    save_project(small_project(), tmp_path / "net.json")
    assert not busy.exists()


@posix_only
def test_a_save_killed_part_way_leaves_a_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "net.json"
    child = run_child(
        f"""
        import os
        from engine.fileio import atomic_write

        def write(tmp):
            tmp.write_bytes(b"x" * 100_000)
            os._exit(9)

        atomic_write({str(target)!r}, write)
        """
    )
    assert child.returncode == 9, child.stderr
    (left,) = [p for p in tmp_path.iterdir()]
    assert left.name.startswith(".net.json.") and left.name.endswith(".tmp")
    age(left, STALE_AFTER_S + 60)
    save_project(small_project(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]


@posix_only
def test_two_processes_saving_at_once_do_not_disturb_each_other(tmp_path):
    """A slow save in another process keeps its temporary (even an old-looking one) and then succeeds."""
    target = tmp_path / "net.json"
    code = f"""
        import sys
        from engine.fileio import atomic_write

        def write(tmp):
            tmp.write_bytes(b"from the slow writer")
            print("writing", flush=True)
            sys.stdin.readline()

        atomic_write({str(target)!r}, write)
        print("done", flush=True)
        """
    slow = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert slow.stdout.readline() == "writing\n"
        (theirs,) = list(tmp_path.iterdir())
        age(theirs, STALE_AFTER_S + 60)
        save_project(small_project("Fast"), target)
        assert theirs.exists() and load_project(target).name == "Fast"
        out, _ = slow.communicate("go\n", timeout=60)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert slow.returncode == 0 and out == "done\n"
    assert target.read_bytes() == b"from the slow writer" and leftovers(tmp_path) == []


def test_a_failed_write_removes_its_own_temporary(tmp_path):
    def write(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.bin", write)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- text UTF-8 cannot store
def surrogate_file(tmp_path: Path, edit) -> Path:
    """A saved project whose JSON text then gets a ``\\udc80`` escape where ``edit`` puts the marker."""
    d = json.loads(json.dumps(project_to_dict(small_project())))
    edit(d)
    text = json.dumps(d).replace("MARK", "\\udc80")
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    return path


def _node(d, i):
    return d["graph"]["nodes"][i]


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: _node(d, 1).update(name="denseMARK"), r"block 'dense\udc80' (id 'n2'): graph.nodes[1].name"),
        (lambda d: _node(d, 1)["params"].update(init="MARK"), r"block 'dense' (id 'n2'): graph.nodes[1].params.init"),
        (lambda d: _node(d, 1).update(MARKx=1), 'block \'dense\' (id \'n2\'): graph.nodes[1]["\\udc80x"]'),
        (lambda d: _node(d, 0).update(id="nMARK"), r"block 'input' (id 'n\udc80'): graph.nodes[0].id"),
        (lambda d: d.update(name="NetMARK"), "bad.json: name"),
        (lambda d: d.update(description="aMARKb"), "bad.json: description"),
        (lambda d: d["data"].update(dataset="MARK"), "bad.json: data.dataset"),
        (lambda d: d["training"].update(extra_note="MARK"), "bad.json: training.extra_note"),
        (lambda d: d.update(mine={"deep": ["ok", "MARK"]}), "bad.json: mine.deep[1]"),
        (lambda d: d.update(mine={"MARK": 1}), r'bad.json: mine["\udc80"]'),
    ],
)
def test_a_lone_surrogate_is_refused_at_load_naming_file_block_and_field(tmp_path, edit, expected):
    with pytest.raises(ProjectError) as info:
        load_project(surrogate_file(tmp_path, edit))
    msg = str(info.value)
    assert msg.startswith("bad.json") and expected in msg and "UTF-8" in msg
    msg.encode("utf-8")  # the message itself can be shown and printed


def test_saving_text_utf8_cannot_store_is_a_project_error(tmp_path):
    path = tmp_path / "net.json"
    save_project(small_project("Old"), path)
    before = path.read_bytes()
    bad = small_project()
    dense = next(nid for nid, n in bad.graph.nodes.items() if n.name == "dense")
    bad.graph.rename(dense, "dense\udc80")
    with pytest.raises(ProjectError) as info:
        save_project(bad, path)
    msg = str(info.value)
    assert msg.startswith("net.json was not saved") and f"(id {dense!r})" in msg and ".name" in msg
    msg.encode("utf-8")
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_atomic_write_text_refuses_unencodable_text_before_touching_the_file(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "new \udc80")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


# ---------------------------------------------------------------------- only regular files
@posix_only
def test_a_named_pipe_is_refused_at_once(tmp_path):
    """Run in a child process so that a load that blocks on the pipe fails the test instead of hanging it."""
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    code = f"""
        from engine.errors import ProjectError
        from engine.project import load_project
        try:
            load_project({str(pipe)!r})
        except ProjectError as exc:
            print(exc)
        """
    try:
        child = run_child(code)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a named pipe blocked")
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "pipe.json is not a regular file (it is a named pipe)"


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda tmp: (tmp / "dir.json").mkdir() or tmp / "dir.json", "a folder"),
        (lambda tmp: Path(os.devnull), "a device"),
    ],
)
@posix_only
def test_a_folder_or_a_device_is_refused(tmp_path, make, kind):
    path = make(tmp_path)
    with pytest.raises(ProjectError, match=rf"^{path.name} is not a regular file \(it is {kind}\)$"):
        load_project(path)


@posix_only
def test_a_symlink_to_a_project_opens_it(tmp_path):
    save_project(small_project("Linked"), tmp_path / "real.json")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert load_project(tmp_path / "link.json").name == "Linked"
