"""The lab's GUI test application: a full-screen Tk window (run with /usr/bin/python3).

Standalone script: it imports nothing from kvmrpa (the system interpreter runs it).
It shows a big label, lines of English and Chinese text, buttons, a text entry and a
status label, all in Noto Sans CJK; it writes every observable event as one JSON line
to ``--events`` and takes JSON-line commands on stdin. :class:`kvmrpa.lab.LabApp` is
its Python face; the protocol is documented there.
"""

from __future__ import annotations

import argparse
import functools
import json
import queue
import sys
import threading
import time
import tkinter as tk
from tkinter import font as tkfont
from typing import Any

DEFAULT_CONFIG: dict[str, Any] = {
    "big": "KVMRPA LAB",
    "lines": ["Hello kvmrpa 123", "测试", "请输入 Chinese 中文"],
    "buttons": [["ok", "OK"], ["cancel", "Cancel"], ["confirm", "确定"], ["dismiss", "取消"]],
    "entry_label": "Input:",
    "status": "ready",
    "font": "Noto Sans CJK SC",
    "bg": "#ffffff",
    "fg": "#000000",
}

MODIFIERS = ((0x1, "shift"), (0x4, "ctrl"), (0x8, "alt"), (0x40, "super"), (0x2, "lock"))


class App:
    def __init__(self, events_path: str, config: dict[str, Any]) -> None:
        self.cfg = {**DEFAULT_CONFIG, **config}
        self.out = open(events_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.seq = 0
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self.root = tk.Tk(className="kvmrpa-lab")
        root = self.root
        w, h = root.winfo_screenwidth(), root.winfo_screenheight()
        root.geometry(f"{w}x{h}+0+0")
        root.title("kvmrpa lab")
        bg, fg, family = self.cfg["bg"], self.cfg["fg"], self.cfg["font"]
        root.configure(bg=bg)
        self.fonts = {
            "big": tkfont.Font(root, family=family, size=-56, weight="bold"),
            "text": tkfont.Font(root, family=family, size=-32),
            "small": tkfont.Font(root, family=family, size=-24),
        }
        self.widgets: dict[str, tk.Widget] = {}
        self.initial: dict[str, dict[str, str]] = {}

        big = tk.Label(root, text=self.cfg["big"], font=self.fonts["big"], bg=bg, fg=fg,
                       padx=20, pady=6)
        big.pack(side="top", pady=(20, 10))
        self._add("big", big)
        for i, text in enumerate(self.cfg["lines"]):
            lbl = tk.Label(root, text=text, font=self.fonts["text"], bg=bg, fg=fg)
            lbl.pack(side="top", pady=4)
            self._add(f"line{i}", lbl)
        row = tk.Frame(root, bg=bg)
        row.pack(side="top", pady=16)
        for name, text in self.cfg["buttons"]:
            btn = tk.Button(row, text=text, font=self.fonts["text"], width=7,
                            command=functools.partial(self._clicked, name))
            btn.pack(side="left", padx=18)
            self._add(name, btn)
        erow = tk.Frame(root, bg=bg)
        erow.pack(side="top", pady=12)
        elabel = tk.Label(erow, text=self.cfg["entry_label"], font=self.fonts["text"], bg=bg, fg=fg)
        elabel.pack(side="left", padx=8)
        self._add("entry_label", elabel)
        self.entry_var = tk.StringVar(root, "")
        entry = tk.Entry(erow, textvariable=self.entry_var, font=self.fonts["text"], width=24)
        entry.pack(side="left")
        self._add("entry", entry)
        self.entry_var.trace_add("write", self._entry_changed)
        status = tk.Label(root, text=self.cfg["status"], font=self.fonts["small"], bg=bg, fg="#333333")
        status.pack(side="bottom", pady=16)
        self._add("status", status)

        root.bind_all("<KeyPress>", self._key, add="+")
        root.bind_all("<KeyRelease>", self._key_release, add="+")
        root.bind_all("<ButtonPress>", self._press, add="+")
        root.bind_all("<ButtonRelease>", self._release, add="+")
        root.bind_all("<Double-ButtonPress-1>", self._double, add="+")
        root.protocol("WM_DELETE_WINDOW", self.quit)

    # -- helpers -------------------------------------------------------------------
    def _add(self, name: str, widget: tk.Widget) -> None:
        widget._lab_name = name  # type: ignore[attr-defined]
        self.widgets[name] = widget
        if name != "entry":
            self.initial[name] = {
                "text": str(widget.cget("text")), "fg": str(widget.cget("fg")),
                "bg": str(widget.cget("bg")),
            }

    def emit(self, kind: str, **data: Any) -> None:
        self.seq += 1
        record = {"type": kind, "seq": self.seq, "t": time.time(), **data}
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def _name_of(self, widget: Any) -> str | None:
        while widget is not None:
            name = getattr(widget, "_lab_name", None)
            if name:
                return name
            widget = getattr(widget, "master", None)
        return None

    def geometry(self) -> dict[str, Any]:
        self.root.update_idletasks()
        out: dict[str, Any] = {}
        for name, w in self.widgets.items():
            text = self.entry_var.get() if name == "entry" else str(w.cget("text"))
            out[name] = {"x": w.winfo_rootx(), "y": w.winfo_rooty(),
                         "w": w.winfo_width(), "h": w.winfo_height(), "text": text}
        return {"screen": [self.root.winfo_screenwidth(), self.root.winfo_screenheight()],
                "widgets": out}

    # -- events --------------------------------------------------------------------
    def _clicked(self, name: str) -> None:
        text = str(self.widgets[name].cget("text"))
        self.widgets["status"]["text"] = f"clicked {name}"
        self.emit("button", name=name, text=text)

    def _entry_changed(self, *_: Any) -> None:
        self.emit("entry", name="entry", text=self.entry_var.get())

    @staticmethod
    def _mods(state: int) -> list[str]:
        return [label for bit, label in MODIFIERS if state & bit]

    def _key(self, e: tk.Event) -> None:
        self.emit("key", keysym=e.keysym, char=e.char, keycode=e.keycode,
                  modifiers=self._mods(int(e.state)), widget=self._name_of(e.widget))

    def _key_release(self, e: tk.Event) -> None:
        self.emit("key_release", keysym=e.keysym, keycode=e.keycode,
                  modifiers=self._mods(int(e.state)), widget=self._name_of(e.widget))

    def _press(self, e: tk.Event) -> None:
        if e.num in (4, 5, 6, 7):
            direction = {4: "up", 5: "down", 6: "left", 7: "right"}[int(e.num)]
            self.emit("scroll", x=e.x_root, y=e.y_root, direction=direction,
                      modifiers=self._mods(int(e.state)), widget=self._name_of(e.widget))
            return
        self.emit("click", x=e.x_root, y=e.y_root, button=e.num,
                  modifiers=self._mods(int(e.state)), widget=self._name_of(e.widget))

    def _release(self, e: tk.Event) -> None:
        if e.num in (4, 5, 6, 7):
            return
        self.emit("release", x=e.x_root, y=e.y_root, button=e.num,
                  widget=self._name_of(e.widget))

    def _double(self, e: tk.Event) -> None:
        self.emit("double_click", x=e.x_root, y=e.y_root, button=1,
                  widget=self._name_of(e.widget))

    # -- commands ------------------------------------------------------------------
    def read_stdin(self) -> None:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                cmd = {"cmd": "invalid", "raw": line[:200]}
            self.commands.put(cmd)
        self.commands.put({"cmd": "quit"})

    def poll(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                break
            try:
                result = self.apply(cmd)
                self.root.update_idletasks()
                self.emit("ack", id=cmd.get("id"), cmd=cmd.get("cmd"), ok=True, **(result or {}))
            except Exception as exc:  # report, keep running
                self.emit("ack", id=cmd.get("id"), cmd=cmd.get("cmd"), ok=False, error=str(exc))
            if cmd.get("cmd") == "quit":
                self.quit()
                return
        self.root.after(15, self.poll)

    def apply(self, cmd: dict[str, Any]) -> dict[str, Any] | None:
        kind = cmd.get("cmd")
        if kind == "set_text":
            name = cmd["name"]
            if name not in self.widgets:
                raise KeyError(f"no element {name!r}; have {sorted(self.widgets)}")
            w = self.widgets[name]
            if name == "entry":
                if "text" in cmd:
                    self.entry_var.set(cmd["text"])
                return None
            opts = {k: cmd[k] for k in ("text", "fg", "bg") if cmd.get(k) is not None}
            w.configure(**opts)
            return None
        if kind == "set_bg":
            self.root.configure(bg=cmd["color"])
            return None
        if kind == "focus":
            self.root.focus_force()
            self.widgets[cmd.get("name", "entry")].focus_set()
            return None
        if kind == "geometry":
            return self.geometry()
        if kind == "pointer":
            x, y = self.root.winfo_pointerxy()
            return {"x": x, "y": y}
        if kind == "reset":
            for name, init in self.initial.items():
                self.widgets[name].configure(**init)
            self.root.configure(bg=self.cfg["bg"])
            self.entry_var.set("")
            self.root.focus_force()
            self.widgets["entry"].focus_set()
            return None
        if kind == "quit":
            return None
        raise ValueError(f"unknown command {kind!r}")

    def quit(self) -> None:
        self.emit("quit")
        self.root.after(0, self.root.destroy)

    def run(self) -> None:
        threading.Thread(target=self.read_stdin, name="stdin", daemon=True).start()
        self.root.update()
        self.root.focus_force()
        self.widgets["entry"].focus_set()
        self.root.update()
        self.emit("ready", pid=_pid(), **self.geometry())
        self.root.after(15, self.poll)
        self.root.mainloop()
        self.out.close()


def _pid() -> int:
    import os

    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description="kvmrpa lab GUI test application")
    parser.add_argument("--events", required=True, help="file to append JSON-line events to")
    parser.add_argument("--config", default="{}", help="JSON object overriding DEFAULT_CONFIG")
    args = parser.parse_args()
    App(args.events, json.loads(args.config)).run()


if __name__ == "__main__":
    main()
