"""The front end is re-entrant: no module-level state; the source travels with its spans."""
import threading

import pytest

import resdsl
from resdsl.frontend.load import load
from resdsl.frontend.lower import lower
from resdsl.frontend.parse import parse


def spec(name: str, bad: str) -> str:
    return (f"network {name}(w = 8) {{\n  input 3x16x16\n  stem {{ {bad}; bn; relu }}\n"
            "  head { avgpool; fc 10 }\n}\n")


A, B = spec("a", "conv w k3 groups 3"), spec("b", "conv 0 k5 s2")


def error_of(text: str) -> str:
    with pytest.raises(resdsl.SpecError) as e:
        resdsl.graph(text)
    return e.value.render()


def test_a_late_error_shows_its_own_source_line():
    """Both texts are `<spec>`; each error still shows the line of the text it came from."""
    programs = [load(A), load(B)]           # both parsed before either is lowered
    for program, line in zip(programs, ("conv w k3 groups 3", "conv 0 k5 s2")):
        with pytest.raises(resdsl.SpecError) as e:
            lower(program)
        assert f"|   stem {{ {line}; bn; relu }}" in e.value.render()


def test_two_threads_parse_and_check_at_once():
    expected = {A: error_of(A), B: error_of(B)}
    assert "groups 3" in expected[A] and "conv 0 k5" in expected[B]
    start, seen, failures = threading.Barrier(2), {A: [], B: []}, []

    def work(text: str) -> None:
        try:
            start.wait()
            for _ in range(30):
                seen[text].append(error_of(text))
        except BaseException as e:          # noqa: BLE001  (reported below)
            failures.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in (A, B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    for text in (A, B):
        assert seen[text] == [expected[text]] * 30


def test_two_threads_read_minus_signs_by_their_own_spacing():
    """The post-lexer reads the spacing of the text it is lexing (`bias -2` vs `d - 2`)."""
    unary = "block g(d = 3) {\n  residual { conv 8 k3 }\n  merge gate bias -2\n}\n"
    binary = "network n(d = 3) {\n  input 3x8x8\n  stem { conv d - 2 k3 }\n}\n"
    want = {unary: parse(unary), binary: parse(binary)}
    start, got = threading.Barrier(2), {unary: [], binary: []}

    def work(text: str) -> None:
        start.wait()
        got[text].extend(parse(text) for _ in range(50))

    threads = [threading.Thread(target=work, args=(t,)) for t in want]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for text, tree in want.items():
        assert got[text] == [tree] * 50
