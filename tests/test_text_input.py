"""Hostile text and files at the front door: what is not a regular file is refused before
it is opened, a BOM and any line ending are read, a line is the same line for the parser
and for the caret, and a number is written in ASCII digits."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ARCHS, STUCK_AFTER_S

NET = "network t\ninput 3x32x32\nshortcut A\nconv1 32x32 : 3x3, 16\nhead : avgpool, fc 10\n"


def run_check(path, **kwargs):
    """`resdsl check PATH` in its own process, so that a hang fails instead of blocking."""
    return subprocess.run([sys.executable, "-m", "resdsl", "check", str(path)],
                          capture_output=True, text=True, timeout=STUCK_AFTER_S, **kwargs)


def test_a_fifo_is_refused_unopened(tmp_path):
    fifo = tmp_path / "f.arch"
    os.mkfifo(fifo)
    done = run_check(fifo)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"{fifo}: error[E101]: cannot read file: it is a FIFO "
                                  "(named pipe), not a regular file")
    # by its bare name too: it is there, so it is not looked up as a bundled network
    done = run_check("f.arch", cwd=tmp_path)
    assert done.returncode == 1 and "it is a FIFO" in done.stderr, done.stderr


def test_extends_dev_stdin_is_refused_unopened(tmp_path):
    path = tmp_path / "net.arch"
    path.write_text('network t\nextends "/dev/stdin"\n', encoding="utf-8")
    with subprocess.Popen([sys.executable, "-m", "resdsl", "check", str(path)],
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as process:
        try:  # stdin stays open and empty: reading it would wait for ever
            code = process.wait(timeout=STUCK_AFTER_S)
        finally:
            process.kill()
        err = process.stderr.read()
    assert code == 1, err
    assert err.startswith(f"{path}:2:1: error[E101]: cannot extend '/dev/stdin': cannot "
                          "read file: it is a FIFO (named pipe), not a regular file"), err


def test_a_directory_and_a_symlink_to_a_device(cli, tmp_path):
    code, _, err = cli("check", tmp_path)
    assert code == 1 and err.startswith(
        f"{tmp_path}: error[E101]: cannot read file: it is a directory, not a regular file")
    link = tmp_path / "null.arch"
    link.symlink_to("/dev/null")
    code, _, err = cli("check", link)
    assert code == 1 and "it is a device, not a regular file" in err, err


def test_a_bundled_name_still_wins_over_a_folder_of_that_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18").mkdir()
    code, out, _ = cli("check", "resnet18")
    assert code == 0 and out.rstrip().endswith("(multiply-adds of conv and fc layers)")


def test_a_utf8_bom_is_skipped(cli, tmp_path):
    path = tmp_path / "bom.arch"
    path.write_bytes(b"\xef\xbb\xbf" + NET.encode())
    assert cli("check", path)[0] == 0
    path.write_bytes(b"\xef\xbb\xbf" + b"network t t\n")  # columns on line 1 skip it too
    code, _, err = cli("check", path)
    assert code == 1 and err.startswith(f"{path}:1:11: error[E103]: unexpected 't'"), err
    assert err.splitlines()[1:3] == ["    network t t", "              ^"]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_reads_alike(cli, tmp_path, ending):
    path = tmp_path / "net.arch"
    path.write_bytes(NET.replace("\n", ending).encode())
    code, out, err = cli("check", path)
    assert code == 0 and "ok: " in out, err
    path.write_bytes(NET.replace("conv1 32x32", "conv1 32x33").replace("\n", ending).encode())
    code, _, err = cli("check", path)
    assert code == 1 and err.startswith(f"{path}:4:7: error[E502]: "), err
    assert err.splitlines()[1:3] == ["    conv1 32x33 : 3x3, 16", "          ^~~~~"]


@pytest.mark.parametrize("char", ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                                  "\u2029"])
def test_the_caret_is_under_the_line_the_parser_counts(cli, tmp_path, char):
    """Only \\n, \\r\\n and \\r end a line; str.splitlines() also breaks at these."""
    path = tmp_path / "net.arch"
    path.write_text(f"# a comment{char}with it\n" + NET + f"c2 : 3x3,{char} 16 :\n",
                    encoding="utf-8")
    code, _, err = cli("check", path)
    lines = err.splitlines()
    assert code == 1 and "Traceback" not in err
    if char == "\f":  # whitespace to the grammar: the error is the stray ':' after it
        assert lines[0].startswith(f"{path}:7:15: error[E103]: unexpected ':'"), err
        column = 15
    else:
        assert lines[0] == f"{path}:7:10: error[E103]: unexpected character {char!r}", err
        column = 10
    assert lines[1] == "    c2 : 3x3,  16 :"  # the character is shown as one space
    assert lines[2].index("^") == 4 + column - 1


@pytest.mark.parametrize("number", ["１６", "١٦", "१६", "৩"])
def test_numbers_are_ascii_digits(cli, tmp_path, number):
    path = tmp_path / "net.arch"
    path.write_text(NET + f"c2 : 3x3, {number}\n", encoding="utf-8")
    code, _, err = cli("check", path)
    assert code == 1
    assert err.splitlines()[0] == (f"{path}:6:11: error[E103]: unexpected character "
                                   f"{number[0]!r}"), err


@pytest.mark.parametrize("value", ["٣", "３", "1_0", "nan", "inf"])
def test_set_numbers_are_ascii(cli, value):
    code, out, err = cli("check", ARCHS / "cifar-resnet.arch", "--set", f"n={value}")
    assert code == 1 and out == ""
    assert f"error[E306]: --set n={value}: a parameter's value is a number" in err


def test_set_numbers_as_a_file_writes_them(cli):
    for value in ["3", "+3", "3.0", "3e0"]:
        code, _, err = cli("check", ARCHS / "cifar-resnet.arch", "--set", f"n={value}")
        assert code == 0, (value, err)


@pytest.mark.parametrize("option, value", [
    ("--steps", "١٠"), ("--batch", "１６"), ("--lr", "٠.١"), ("--lr", "nan"),
    ("--milestones", "३,४"), ("--workers", "٢"), ("--seed", "１")])
def test_command_line_numbers_take_ascii_digits_only(cli, tmp_path, option, value):
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", "--data", "synthetic",
                       "--out", tmp_path, option, value)
    assert code == 2 and f"argument {option}: expected" in err and value in err


def test_a_message_quoting_the_file_stays_one_printable_line(cli, tmp_path):
    path = tmp_path / "child.arch"
    path.write_text('extends "a\u2029b\x1b[31m\x85.arch"\n', encoding="utf-8")
    code, _, err = cli("check", path)
    first = err.split("\n")[0]
    assert code == 1 and f"{path}:1:1: error[E101]: cannot extend" in first
    assert "\\u2029" in first and "\\x1b" in first and "\\x85" in first
    assert not any(c in err for c in "\u2029\x1b\x85")
