"""Text matching: contains / exact / regex / fuzzy, with width and space normalisation."""

from __future__ import annotations

import pytest

from kvmrpa import VisionError
from kvmrpa.vision import compile_text_matcher, text_matches
from kvmrpa.vision._text import edit_distance, normalize_text, substring_distance


def test_normalize_full_width_and_spaces() -> None:
    assert normalize_text("ＯＫ：  确定\t１２３ ") == "OK: 确定 123"
    assert normalize_text(" a  b ", drop_spaces=True) == "ab"
    assert normalize_text("Hello", ignore_case=True) == "hello"


def test_edit_distances() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("测试", "测试") == 0
    assert substring_distance("测试", "请测试一下") == 0
    assert substring_distance("下一步", "点击下—步继续") == 1  # OCR read 一 as an em dash
    assert substring_distance("abc", "xyz") == 3
    assert substring_distance("", "anything") == 0


@pytest.mark.parametrize(
    ("text", "pattern", "mode", "expected"),
    [
        ("Cancel OK 确定", "OK", "contains", True),
        ("Cancel OK 确定", "ok", "contains", False),
        ("ＯＫ", "OK", "exact", True),  # full-width OCR output
        ("OK  ", "OK", "exact", True),
        ("OK!", "OK", "exact", False),
        ("测试2", r"测试\d", "regex", True),
        ("测试", r"测试\d", "regex", False),
        ("请输人", "请输入", "fuzzy", True),  # 入 read as 人: one substitution
        ("下 一 步", "下一步", "fuzzy", True),  # spaces inserted by OCR are ignored
        ("上一步", "下一步", "fuzzy", True),
        ("取消", "下一步", "fuzzy", False),
    ],
)
def test_modes(text: str, pattern: str, mode: str, expected: bool) -> None:
    assert text_matches(text, pattern, mode) is expected  # type: ignore[arg-type]


def test_fuzzy_threshold_and_case() -> None:
    assert text_matches("Helo Wrld", "Hello World", "fuzzy", max_distance=2)
    assert not text_matches("Helo Wrld", "Hello World", "fuzzy", max_distance=1)
    assert not text_matches("上一步", "下一步", "fuzzy", max_distance=0)
    assert text_matches("SUBMIT", "submit", "exact", ignore_case=True)
    assert text_matches("Submit now", "SUBMIT", "regex", ignore_case=True)


def test_bad_pattern_fails_early() -> None:
    with pytest.raises(VisionError, match="invalid regex"):
        compile_text_matcher("(unclosed", "regex")
    with pytest.raises(VisionError, match="unknown text match mode"):
        compile_text_matcher("x", "glob")  # type: ignore[arg-type]
    with pytest.raises(VisionError, match="max_distance"):
        compile_text_matcher("x", "fuzzy", max_distance=-1)
