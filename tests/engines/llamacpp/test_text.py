from __future__ import annotations

from modelyard.engines.llamacpp.text import StopScanner


def feed(scanner: StopScanner, pieces: list[bytes]) -> str:
    return "".join(scanner.push(p) for p in pieces) + scanner.flush()


def test_utf8_split_across_tokens_is_joined() -> None:
    data = "北京 é".encode()
    assert feed(StopScanner([]), [data[i : i + 1] for i in range(len(data))]) == "北京 é"


def test_stop_string_split_across_tokens_is_cut_and_never_emitted() -> None:
    scanner = StopScanner(["END"])
    out = [scanner.push(b"hello E"), scanner.push(b"N"), scanner.push(b"D more")]
    assert "".join(out) == "hello "
    assert scanner.stopped
    assert scanner.flush() == ""


def test_a_false_start_of_a_stop_string_is_released() -> None:
    scanner = StopScanner(["END"])
    assert scanner.push(b"the E") == "the "
    assert scanner.push(b"ND") == ""
    assert scanner.stopped
    other = StopScanner(["END"])
    assert feed(other, [b"the E", b"gg"]) == "the Egg"
    assert not other.stopped
