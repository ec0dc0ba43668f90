"""NodeEditor: fields that a choice makes relevant appear at once (the form is not rebuilt
by reselecting the node), empty-able numbers are number boxes, and the side panel."""

from __future__ import annotations

import panel as pn
from kvmrpa.widgets import NodeEditor

from kvmrpa.nodes import get_node_class


def shown(ed: NodeEditor) -> list[str]:
    return [w.name for w in ed._form.objects[1]._widget_box.objects]


def test_fields_hidden_when_the_form_was_built_appear_when_a_choice_needs_them() -> None:
    node = get_node_class("mouse")()  # target 'point': no text fields
    ed = NodeEditor(node)
    params = ed._form.objects[1]
    assert "Text" not in shown(ed) and "X" in shown(ed)
    ed.form.target = "text"  # a choice in the form …
    assert node.target == "text"
    assert {"Text", "Match mode", "Ignore case"} <= set(shown(ed)) and "X" not in shown(ed)
    assert "Max distance" not in shown(ed)
    ed.form.match_mode = "fuzzy"  # … and one more: the fuzzy-only field
    assert "Max distance" in shown(ed)
    node.match_mode = "exact"  # a change made elsewhere (code, the live view) too
    assert "Max distance" not in shown(ed)
    assert ed._form.objects[1] is params  # the same form throughout


def test_internal_parameters_stay_out_of_the_form() -> None:
    node = get_node_class("mouse")()
    ed = NodeEditor(node)
    declared = type(node).param
    hidden = [n for n in declared if declared[n].precedence is not None and declared[n].precedence < 0]
    in_form = set(ed._form.objects[1].parameters) | set(ed._form.objects[2].objects[0].parameters)
    assert not in_form & set(hidden)


def test_a_number_that_may_be_empty_is_a_number_box_and_clearing_it_sets_none() -> None:
    node = get_node_class("mouse")(target="text", match_mode="fuzzy", max_distance=3)
    ed = NodeEditor(node)
    (box,) = [w for w in ed._form.objects[1]._widget_box.objects if w.name == "Max distance"]
    assert isinstance(box, pn.widgets.IntInput) and box.value == 3
    assert (box.start, box.end) == (0, 100)
    box.value = None
    assert node.max_distance is None and not ed.message.visible


def test_beside_is_a_fixed_height_panel_headed_edit_node() -> None:
    ed = NodeEditor(get_node_class("wait")())
    panel = ed.beside(height=420, width=320)
    assert panel.height == 420 and panel.width == 320 and panel.scroll
    assert "Edit node" in panel.objects[0].object
    assert ed.run_button in panel.objects[1].objects and ed.image in panel.objects[1].objects
