"""`-o` writes files and nothing else: devices and FIFOs are written to, not replaced;
symlinks are written through; read-only files are refused; permission bits are kept."""

import os
import socket
import stat
import subprocess
import sys
import threading

import pytest

from resdsl.errors import ResdslError
from resdsl.output import write_atomic
from tests.conftest import ARCHS, STUCK_AFTER_S

RESNET18 = ARCHS / "resnet18.arch"


@pytest.fixture(autouse=True)
def dev_null_survives():
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    yield
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode), "/dev/null was replaced"


@pytest.fixture
def table(cli):
    code, out, _ = cli("flops", RESNET18)
    assert code == 0
    return out


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_dev_null_is_written_to_not_replaced(cli):
    write_atomic("/dev/null", "nothing to see\n")
    code, _, err = cli("flops", RESNET18, "-o", "/dev/null")
    assert code == 0 and "wrote /dev/null" in err
    # the fixture checks that /dev/null is still a character device


def test_dev_stdout_reaches_the_pipe(table):
    done = subprocess.run([sys.executable, "-m", "resdsl", "flops", str(RESNET18), "-o",
                           "/dev/stdout"], capture_output=True, text=True, check=True)
    assert done.stdout == table
    assert os.path.islink("/dev/stdout")


@pytest.mark.parametrize("redirect", ["wb", "ab"], ids=[">", ">>"])
def test_dev_stdout_redirected_to_a_file_writes_that_file(tmp_path, table, redirect):
    log = tmp_path / "log.txt"
    log.write_text("kept\n")
    with open(log, redirect) as stdout:
        subprocess.run([sys.executable, "-m", "resdsl", "flops", str(RESNET18), "-o",
                        "/dev/stdout"], stdout=stdout, stderr=subprocess.DEVNULL, check=True)
    assert log.read_text() == ("kept\n" if redirect == "ab" else "") + table
    assert not log.is_symlink() and os.path.islink("/dev/stdout")


def test_a_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, "through the pipe\n")
    reader.join(timeout=STUCK_AFTER_S)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporaries


def test_a_symlink_is_written_through(cli, tmp_path, table):
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert cli("flops", RESNET18, "-o", link)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == table


def test_a_relative_symlink_in_another_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "out.txt"
    link.symlink_to("../real/out.txt")
    (tmp_path / "real" / "out.txt").write_text("old\n")
    write_atomic(link, "new\n")
    assert link.is_symlink() and (tmp_path / "real" / "out.txt").read_text() == "new\n"
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["out.txt"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    target = tmp_path / "made.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_atomic(link, "made\n")
    assert link.is_symlink() and target.read_text() == "made\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask()


def test_a_read_only_file_is_refused(cli, tmp_path):
    target = tmp_path / "locked.txt"
    target.write_text("keep me\n")
    target.chmod(0o444)
    with pytest.raises(ResdslError) as refused:
        write_atomic(target, "overwritten\n")
    assert refused.value.code == "E701" and "read-only" in refused.value.message
    code, out, err = cli("flops", RESNET18, "-o", target)
    assert code == 1 and out == ""
    assert f"error[E701]: cannot write {target}: the file is read-only" in err
    assert target.read_text() == "keep me\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["locked.txt"]


def test_a_read_only_file_behind_a_symlink_is_refused(tmp_path):
    target = tmp_path / "locked.txt"
    target.write_text("keep me\n")
    target.chmod(0o444)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(ResdslError, match="read-only"):
        write_atomic(link, "overwritten\n")
    assert target.read_text() == "keep me\n" and link.is_symlink()


def test_an_executable_keeps_its_mode(tmp_path):
    target = tmp_path / "run.sh"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    write_atomic(target, "#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert target.read_text() == "#!/bin/sh\necho hi\n"


def test_a_new_file_gets_the_umask_mode(tmp_path):
    target = tmp_path / "new.txt"
    write_atomic(target, "new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask()


def test_a_directory_is_refused(cli, tmp_path):
    code, out, err = cli("flops", RESNET18, "-o", tmp_path)
    assert code == 1 and out == ""
    assert f"error[E701]: cannot write {tmp_path}: Is a directory" in err
    assert list(tmp_path.iterdir()) == []


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(ResdslError) as refused:
            write_atomic(path, "data\n")
    assert refused.value.code == "E701" and "not a regular file" in refused.value.message
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
