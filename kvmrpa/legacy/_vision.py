"""Import of the original system's vision, source and action node types.

Registers the mappers of ``rtsp_source``,
``kvm_source``, ``image_crop``, ``preprocessing``, ``yolo_detection``,
``ocr_recognition``, the vision kinds of ``condition`` (``ocr_text_found``,
``ocr_has_result``, ``detection_found``), ``mouse_action`` and ``keyboard_action``.

The original nodes shared a blackboard: the last frame, the last OCR result, the last
detections. kvmrpa passes results along edges instead, so :func:`resolve_blackboard`
(an import pass, run on every imported document) points every node that read the blackboard at the node
that wrote it last in the original's order: when that node is not already upstream,
an edge is added and reported; when no node ever wrote it, the flow cannot run as it
did and the node is named in a problem. It also gives the flow its source: the device
its source nodes name when they all name one (they then read the flow's source, so an
override such as ``kvmrpa run --source URL`` moves the whole flow), else the first
source node's URL, which nodes with no frame upstream fall back to.

A plain-text password (``kvm_source.password``) is reported; :func:`secure_secrets`
(used by ``kvmrpa convert``) replaces it by a ``${env:NAME}`` reference.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .._errors import Problem
from .._redact import password_span, plain_secret_in_url
from .._settings import parse_bool
from ..nodes import ENV_REF
from ._registry import Mapped, OriginalNode, register_import_mapper, register_import_pass

__all__ = ["env_name_for", "resolve_blackboard", "secure_secrets"]

_ONNX_BACKENDS = {"", "onnx", "onnxruntime", "ort", "cpu", "rapidocr", "paddle", "paddleocr",
                  "ppocr", "default", "auto"}
_MATCH_MODES = {"contains": "contains", "exact": "exact", "regex": "regex", "fuzzy": "fuzzy",
                "equals": "exact", "equal": "exact", "include": "contains", "includes": "contains",
                "regexp": "regex"}
_BUTTONS = {"left": "left", "right": "right", "middle": "middle", "": "left"}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or (
        isinstance(value, int | float) and not isinstance(value, bool) and value == 0)


def _ignore_if_empty(o: OriginalNode, *keys: str) -> None:
    """Properties that do not apply to this node's mode: quiet when empty (the original
    ignored them too), reported otherwise."""
    for key in keys:
        if key in o.properties and _empty(o.properties[key]):
            o.ignore(key)


def _num(value: Any, default: float) -> float | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(o: OriginalNode, out: Mapped, key: str, default: int, *, lo: int = 0) -> int:
    value = _num(o.take(key, default), default)
    if value is None or not value.is_integer() or value < lo:
        out.problems.append(o.warn(key, f"expected a whole number >= {lo}, got "
                                        f"{o.properties.get(key)!r}"))
        return default
    return int(value)


def _unit(o: OriginalNode, out: Mapped, key: str, default: float) -> float:
    value = _num(o.take(key, default), default)
    if value is None or not 0.0 <= value <= 1.0:
        out.problems.append(o.warn(key, f"expected a number within [0, 1], got "
                                        f"{o.properties.get(key)!r}"))
        return default
    return value


def _bool(o: OriginalNode, key: str, default: bool) -> bool:
    value = o.take(key, default)
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:  # the original read any other text as false
            return False
    return bool(value)


def _mode(o: OriginalNode, out: Mapped, key: str = "match_mode") -> str:
    raw = o.take(key, "contains")
    mode = _MATCH_MODES.get(str(raw or "contains").strip().lower())
    if mode is None:
        out.problems.append(o.warn(key, f"match mode {raw!r} has no equivalent (supported: "
                                        "contains, exact, regex, fuzzy)"))
        return "contains"
    return mode


def env_name_for(node_id: str, prop: str = "password") -> str:
    """The environment variable a converted secret refers to: ``KVMRPA_<NODE>_<PROP>``."""
    return re.sub(r"[^A-Z0-9_]", "_", f"KVMRPA_{node_id}_{prop}".upper())


# -- sources --------------------------------------------------------------------------------
def _source_extras(o: OriginalNode, out: Mapped) -> None:
    fps = o.take("fps")
    if not _empty(fps):
        out.warnings.append(o.warn("fps", f"not applied ({fps!r}): kvmrpa reads every frame the "
                                          "source sends and each pass takes the latest one"))
    res = o.take("resolution")
    if not _empty(res):
        out.warnings.append(o.warn("resolution", f"not applied ({res!r}): frames keep the "
                                                 "source's own size, so crop regions and fixed "
                                                 "points are in the source's pixels"))


def _map_rtsp_source(o: OriginalNode) -> Mapped:
    out = Mapped([])
    url = o.take("url", "")
    if not isinstance(url, str) or not url.strip():
        out.problems.append(o.warn("url", "an rtsp_source needs a URL"))
        url = ""
    if plain_secret_in_url(url or "") is not None:
        out.warnings.append(o.warn("url", "holds a plain-text password; kvmrpa convert replaces "
                                          f"it with ${{env:{env_name_for(o.id)}}}"))
    _source_extras(o, out)
    out.nodes.append(o.native("source", {"url": url.strip(), "wait_new_frame":
                                         _bool(o, "wait_new_frame", True)}))
    return out


def _map_kvm_source(o: OriginalNode) -> Mapped:
    out = Mapped([])
    ip = str(o.take("ip", "") or "").strip()
    if not ip:
        out.problems.append(o.warn("ip", "a kvm_source needs the KVM's address"))
    port = _int(o, out, "port", 554, lo=1)
    channel = o.take("channel", "")
    user = str(o.take("username", "") or "")
    password = o.take("password", "")
    password = "" if password is None else str(password)
    cred = ""
    if user or password:
        cred = quote(user, safe="")
        if password:
            if ENV_REF.fullmatch(password):
                cred += ":" + password
            else:
                cred += ":" + quote(password, safe="")
                out.warnings.append(o.warn("password", "a plain-text password; kvmrpa convert "
                                                       f"replaces it with ${{env:{env_name_for(o.id)}}}"))
        cred += "@"
    path = f"/{channel}" if not _empty(channel) or channel == 0 else ""
    url = f"rtsp://{cred}{ip}:{port}{path}"
    out.warnings.append(o.warn("channel", f"opened as rtsp://{ip}:{port}{path} (channel as the "
                                          "RTSP path); check it is the path your KVM serves"))
    _source_extras(o, out)
    out.nodes.append(o.native("source", {"url": url, "wait_new_frame":
                                         _bool(o, "wait_new_frame", True)}))
    return out


# -- image ------------------------------------------------------------------------------------
def _map_image_crop(o: OriginalNode) -> Mapped:
    out = Mapped([])
    x, y = _int(o, out, "x", 0), _int(o, out, "y", 0)
    w, h = _int(o, out, "width", 100, lo=1), _int(o, out, "height", 100, lo=1)
    # The cropped frame always keeps its offset, and the full frame stays upstream:
    # save_original's purpose (clicks on the full screen) holds whatever its value.
    o.ignore("save_original")
    out.nodes.append(o.native("crop", {"x": x, "y": y, "width": w, "height": h}))
    return out


def _map_preprocessing(o: OriginalNode) -> Mapped:
    out = Mapped([])
    params: dict[str, Any] = {}
    if _bool(o, "resize", False):
        tw, th = _int(o, out, "target_width", 0), _int(o, out, "target_height", 0)
        if tw or th:
            params.update(resize="fit", target_width=tw, target_height=th)
            out.warnings.append(o.warn("resize", "kvmrpa keeps the aspect ratio (fits within "
                                                 f"{tw}x{th}) so points map back to the screen"))
        else:
            out.warnings.append(o.warn("resize", "on, but no target size: not resized"))
    else:
        _ignore_if_empty(o, "target_width", "target_height")
        o.ignore("target_width", "target_height")
    if _bool(o, "denoise", False):
        params["denoise"] = "median"
    if _bool(o, "sharpen", False):
        params["sharpen"] = True
    for key in ("grayscale", "gray"):
        if o.has(key) and _bool(o, key, False):
            params["gray"] = True
    for key in ("threshold", "binarize", "binary"):
        if o.has(key) and _bool(o, key, False):
            params["threshold"] = "otsu"
    if o.has("invert") and _bool(o, "invert", False):
        params["invert"] = True
    out.nodes.append(o.native("preprocess", params))
    return out


# -- vision -----------------------------------------------------------------------------------
def _map_yolo(o: OriginalNode) -> Mapped:
    out = Mapped([])
    model = str(o.take("model_path", "") or "")
    if not model:
        out.problems.append(o.warn("model_path", "a yolo_detection needs a model"))
    elif not model.lower().endswith(".onnx"):
        out.problems.append(o.warn("model_path", f"{model!r} is not an ONNX model; kvmrpa runs "
                                                 "YOLO models exported to ONNX (export it with "
                                                 "format=onnx and point model_path at it)"))
    backend = str(o.take("backend", "") or "").strip().lower()
    if backend not in _ONNX_BACKENDS:
        out.warnings.append(o.warn("backend", f"{backend!r} is not available: the model runs on "
                                              "onnxruntime (CPU)"))
    dev = o.take("dev_id", 0)
    if not _empty(dev):
        out.warnings.append(o.warn("dev_id", f"device {dev!r} is not used: the model runs on "
                                             "the CPU"))
    labels = o.take("target_labels", "")
    if isinstance(labels, str):
        names = [s.strip() for s in re.split(r"[,;，\s]+", labels) if s.strip()]
    elif isinstance(labels, list):
        names = [str(s).strip() for s in labels if str(s).strip()]
    else:
        names = []
        out.problems.append(o.warn("target_labels", f"expected a list or comma-separated "
                                                    f"names, got {labels!r}"))
    params: dict[str, Any] = {"model": model,
                              "conf_threshold": _unit(o, out, "conf_threshold", 0.25),
                              "iou_threshold": _unit(o, out, "iou_threshold", 0.45)}
    if names:
        params["labels"] = names
    names_file = o.take("names_path", o.take("class_names", ""))
    if isinstance(names_file, str) and names_file:
        params["names"] = names_file
    out.nodes.append(o.native("detect", params))
    return out


def _map_ocr(o: OriginalNode) -> Mapped:
    out = Mapped([])
    params: dict[str, Any] = {"min_confidence": _unit(o, out, "conf_threshold", 0.5),
                              "use_cls": _bool(o, "use_angle_cls", False)}
    backend = str(o.take("backend", "") or "").strip().lower()
    custom_ok = True
    if backend == "tesseract":
        params["engine"] = "tesseract"
        custom_ok = False
    elif backend not in _ONNX_BACKENDS:
        out.warnings.append(o.warn("backend", f"{backend!r} is not available: OCR runs with "
                                              "RapidOCR on onnxruntime (CPU)"))
    for prop, field in (("det_model", "det_model"), ("rec_model", "rec_model"),
                        ("cls_model", "cls_model"), ("char_dict_path", "rec_keys")):
        value = str(o.take(prop, "") or "")
        if not value:
            continue
        usable = custom_ok and (field == "rec_keys" or value.lower().endswith(".onnx"))
        if usable:
            params[field] = value
        else:
            out.warnings.append(o.warn(prop, f"{value!r} cannot be loaded here: the bundled "
                                             "PP-OCR model (Chinese + English) is used"))
    if "rec_keys" in params and "rec_model" not in params:
        out.warnings.append(o.warn("char_dict_path", "a dictionary without its recognition model "
                                                     "is not used"))
        del params["rec_keys"]
    for key in ("lang", "language"):
        lang = o.take(key, "")
        if lang and str(lang).lower() not in ("ch", "chinese", "zh", "en", "english", "ch_en",
                                              "chinese_cht", "ch+en", "en+ch"):
            out.warnings.append(o.warn(key, f"language {lang!r}: the bundled models read "
                                            "Chinese and English"))
    out.nodes.append(o.native("ocr", params))
    return out


_VISION_CONDITIONS = ("ocr_text_found", "ocr_has_result", "detection_found")


def _map_condition(o: OriginalNode) -> Mapped:
    out = Mapped([])
    kind = o.take("condition_type")
    other = ("variable_name", "compare_operator", "compare_value", "expression")
    if kind == "ocr_text_found":
        text = o.take("target_text", "")
        if not text:
            out.problems.append(o.warn("target_text", "ocr_text_found needs a target_text"))
        params = {"kind": "text_found", "text": str(text or ""), "match_mode": _mode(o, out)}
        _ignore_if_empty(o, "target_label", *other)
    elif kind == "ocr_has_result":
        params = {"kind": "any_text"}
        _ignore_if_empty(o, "target_text", "target_label", *other)
        if "match_mode" in o.properties:
            o.ignore("match_mode")  # a mode without a text has no effect there either
    else:
        params = {"kind": "detection_found", "object_label": str(o.take("target_label", "") or "")}
        _ignore_if_empty(o, "target_text", *other)
        if "match_mode" in o.properties:
            o.ignore("match_mode")
    out.nodes.append(o.native("vision_condition", params))
    return out


# -- actions ----------------------------------------------------------------------------------
def _map_mouse(o: OriginalNode) -> Mapped:
    out = Mapped([])
    action = str(o.take("action_type", "click") or "click").strip().lower()
    button = str(o.take("button", "left") or "left").strip().lower()
    if button not in _BUTTONS:
        out.problems.append(o.warn("button", f"unknown button {button!r} (left, right, middle)"))
        button = "left"
    actions = {"click": "click", "double_click": "double_click", "doubleclick": "double_click",
               "dblclick": "double_click", "move": "move", "right_click": "right_click",
               "drag": "drag", "scroll": "scroll"}
    if action not in actions:
        out.problems.append(o.warn("action_type", f"mouse action {action!r} has no equivalent "
                                                  "(click, double_click, move)"))
        action = "click"
    params: dict[str, Any] = {"action": actions[action], "button": _BUTTONS[button]}
    mode = str(o.take("position_mode", "fixed") or "fixed").strip().lower()
    if mode == "fixed":
        x, y = _num(o.take("x", 0), 0), _num(o.take("y", 0), 0)
        if x is None or y is None or x < 0 or y < 0:
            out.problems.append(o.warn("x", f"fixed point ({o.properties.get('x')!r}, "
                                            f"{o.properties.get('y')!r}) is not two numbers >= 0"))
            x, y = 0.0, 0.0
        params.update(target="point", x=x, y=y)
        _ignore_if_empty(o, "target_text", "detection_label")
        if "match_mode" in o.properties:
            o.ignore("match_mode")
    elif mode in ("ocr_match", "ocr", "text"):
        text = o.take("target_text", "")
        if not text:
            out.problems.append(o.warn("target_text", "ocr_match needs a target_text"))
        params.update(target="text", text=str(text or ""), match_mode=_mode(o, out))
        _ignore_if_empty(o, "x", "y", "detection_label")
    elif mode == "detection":
        params.update(target="detection", object_label=str(o.take("detection_label", "") or ""))
        _ignore_if_empty(o, "x", "y", "target_text")
        if "match_mode" in o.properties:
            o.ignore("match_mode")
    else:
        out.problems.append(o.warn("position_mode", f"position mode {mode!r} has no equivalent "
                                                    "(fixed, ocr_match, detection)"))
    for key in ("offset_x", "offset_y"):
        value = _num(o.take(key, 0), 0)
        if value is None:
            out.problems.append(o.warn(key, f"not a number: {o.properties.get(key)!r}"))
        elif value:
            params[key] = value
    out.nodes.append(o.native("mouse", params))
    return out


def _map_keyboard(o: OriginalNode) -> Mapped:
    out = Mapped([])
    action = str(o.take("action_type", "input") or "input").strip().lower()
    if action in ("input", "type", "text"):
        params: dict[str, Any] = {"action": "type", "text": str(o.take("text", "") or "")}
        _ignore_if_empty(o, "key", "hotkey")
    elif action in ("key", "press"):
        params = {"action": "key", "key": str(o.take("key", "") or "").strip()}
        _ignore_if_empty(o, "text", "hotkey")
    elif action in ("hotkey", "combo", "shortcut"):
        params = {"action": "hotkey", "hotkey": str(o.take("hotkey", "") or "").strip()}
        _ignore_if_empty(o, "text", "key")
    else:
        out.problems.append(o.warn("action_type", f"keyboard action {action!r} has no equivalent "
                                                  "(input, key, hotkey)"))
        params = {"action": "type", "text": ""}
    out.nodes.append(o.native("keyboard", params))
    return out


register_import_mapper("rtsp_source", _map_rtsp_source)
register_import_mapper("kvm_source", _map_kvm_source)
register_import_mapper("image_crop", _map_image_crop)
register_import_mapper("preprocessing", _map_preprocessing)
register_import_mapper("yolo_detection", _map_yolo)
register_import_mapper("ocr_recognition", _map_ocr)
register_import_mapper("condition", _map_condition,
                       accepts=lambda o: o.properties.get("condition_type") in _VISION_CONDITIONS)
register_import_mapper("mouse_action", _map_mouse)
register_import_mapper("keyboard_action", _map_keyboard)


# -- the blackboard -------------------------------------------------------------------------------
_FRAME_MAKERS = {"source", "crop", "preprocess"}
_FRAME_USERS = {"crop", "preprocess", "ocr", "detect", "match_template"}


def _needs(node: Mapping[str, Any]) -> list[str]:
    """Blackboard entries (``frame``, ``texts``, ``detections``) a native node reads."""
    t, p = node.get("type"), node.get("params") or {}
    if t in _FRAME_USERS:
        return ["frame"]
    if t == "vision_condition":
        kind = p.get("kind", "text_found")
        return ["texts"] if kind in ("text_found", "any_text") else (
            ["detections"] if kind == "detection_found" else [])
    if t == "mouse":
        target = p.get("target", "point")
        return ["texts"] if target == "text" else (["detections"] if target == "detection" else [])
    return []


def _writes(node: Mapping[str, Any], key: str) -> bool:
    t = node.get("type")
    return {"frame": t in _FRAME_MAKERS, "texts": t == "ocr",
            "detections": t == "detect"}[key]


def _original_order(ids: list[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """The order the original executor ran nodes in: breadth first from the start nodes,
    a node once any predecessor had run (its defect, reproduced here on purpose)."""
    succ: dict[str, list[str]] = {i: [] for i in ids}
    has_pred: set[str] = set()
    for s, t in edges:
        if s in succ and t in succ:
            succ[s].append(t)
            has_pred.add(t)
    order: list[str] = []
    seen: set[str] = set()
    starts = [i for i in ids if i not in has_pred] or ids[:1]
    queue: deque[str] = deque(starts)
    while queue or len(seen) < len(ids):
        if not queue:
            queue.append(next(i for i in ids if i not in seen))
        nid = queue.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        order.append(nid)
        queue.extend(succ[nid])
    return order


def _adopt_source(doc: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """Give the flow its source: the device its source nodes name.

    When every source node names the same URL (the flow's one device), that URL becomes
    the flow's ``source`` and the nodes read the flow's source (their ``url`` emptied),
    so running the flow on another device or the simulator is one override. When they
    name several, each node keeps its URL and the first becomes the flow's default.
    """
    sources = [n for n in nodes if n.get("type") == "source" and (n.get("params") or {}).get("url")]
    if not sources or doc.get("source"):
        return
    urls = {n["params"]["url"] for n in sources}
    doc["source"] = sources[0]["params"]["url"]
    if len(urls) == 1:
        for n in sources:
            del n["params"]["url"]
        doc.setdefault("metadata", {})["source_node"] = sources[0]["id"]


@register_import_pass
def resolve_blackboard(doc: dict[str, Any]) -> tuple[list[Problem], list[Problem]]:
    """Make an imported native document's blackboard reads explicit (in place).

    Returns ``(warnings, problems)``; see the module docstring.
    """
    warnings: list[Problem] = []
    problems: list[Problem] = []
    nodes = [n for n in doc.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("id"), str)]
    by_id = {n["id"]: n for n in nodes}
    edges: list[dict[str, Any]] = [e for e in doc.get("edges") or [] if isinstance(e, dict)]
    pairs = [(e.get("source"), e.get("target")) for e in edges]
    preds: dict[str, set[str]] = {i: set() for i in by_id}
    succs: dict[str, set[str]] = {i: set() for i in by_id}
    for s, t in pairs:
        if isinstance(s, str) and isinstance(t, str) and s in by_id and t in by_id:
            preds[t].add(s)
            succs[s].add(t)

    def closure(start: str, graph: dict[str, set[str]]) -> set[str]:
        out: set[str] = set()
        stack = list(graph[start])
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(graph[n])
        return out

    order = _original_order(list(by_id), pairs)  # type: ignore[arg-type]
    rank = {nid: i for i, nid in enumerate(order)}
    _adopt_source(doc, nodes)
    for nid in order:
        node = by_id[nid]
        for key in _needs(node):
            ancestors = closure(nid, preds)
            if any(_writes(by_id[a], key) for a in ancestors):
                continue
            descendants = closure(nid, succs)
            before = [c for c in order[: rank[nid]] if c not in descendants and _writes(by_id[c], key)]
            if before:
                writer = before[-1]
                edges.append({"source": writer, "target": nid})
                preds[nid].add(writer)
                succs[writer].add(nid)
                warnings.append(Problem(nid, None, f"in the original it read the last {key} on "
                                                   f"the shared blackboard, written by node "
                                                   f"{writer}; edge {writer} -> {nid} added"))
            elif key == "frame":
                if not doc.get("source"):
                    problems.append(Problem(nid, None, "no source node runs before it and the "
                                                       "flow has no source: it has no frame to read"))
            else:
                what = "ocr_recognition" if key == "texts" else "yolo_detection"
                problems.append(Problem(nid, None, f"reads the {key} of an {what} node, but no "
                                                   f"{what} node runs before it; add one upstream"))
    doc["edges"] = edges
    return warnings, problems


def secure_secrets(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Replace plain-text passwords in URLs (node parameters and the flow's ``source`` /
    ``input``) by ``${env:NAME}`` references, in place.

    Returns ``(node id or "flow", parameter, variable name)`` for each replacement. The
    variable must hold the password as it goes in a URL (percent-encoded).
    """
    done: list[tuple[str, str, str]] = []
    replaced: dict[str, str] = {}

    def secure(value: str, owner: str, key: str) -> str:
        span = password_span(value)
        if span is None or ENV_REF.fullmatch(value[span[0]:span[1]]):
            return value
        if value in replaced:
            return replaced[value]
        adopted = (doc.get("metadata") or {}).get("source_node") if key == "source" else None
        name = env_name_for(owner if owner != "flow" else (adopted or key))
        new = f"{value[:span[0]]}${{env:{name}}}{value[span[1]:]}"
        replaced[value] = new
        done.append((owner, key, name))
        return new

    for node in doc.get("nodes") or []:
        params = node.get("params") if isinstance(node, dict) else None
        if isinstance(params, dict):
            for key, value in list(params.items()):
                if isinstance(value, str):
                    params[key] = secure(value, str(node.get("id")), key)
    for key in ("source", "input"):
        if isinstance(doc.get(key), str):
            doc[key] = secure(doc[key], "flow", key)
    return done
