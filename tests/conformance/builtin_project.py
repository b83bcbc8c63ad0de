"""A throwaway kit project whose scripted model calls the built-in tools, for ``kit serve`` tests.

``write_builtin_project(folder)`` writes ``kit.yaml`` (scripted model; text_to_image ``local``;
quark_search over the repository's ``examples/corpus``; a code interpreter with small limits) and
the model script:

* "draw a picture of X": quark_search for X, then text_to_image of X, then a reply quoting the
  image tool's output (the painting assistant of DashScope's getting-started guide);
* "plot squares": code_interpreter draws a matplotlib figure;
* "escape: NAME [ARG]": code_interpreter runs the escape attempt ``ESCAPES[NAME]`` (ARG fills
  ``{1}``); "check": ``print(6 * 7)``; after any code, the reply quotes its output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "examples" / "corpus"
SECRET_NAME = "KIT_ESCAPE_SECRET"
SECRET_VALUE = "sentinel-3scape-s3cret"

#: Small limits so that every escape ends within a second or two.
LIMITS = {
    "timeout_s": 10,
    "cpu_s": 1,
    "memory_mb": 512,
    "max_processes": 16,
    "file_mb": 4,
    "disk_mb": 16,
    "max_output_bytes": 4096,
    "idle_timeout_s": 120,
}

PLOT = """\
import matplotlib.pyplot as plt
plt.plot([1, 2, 3, 4], [1, 4, 9, 16])
plt.title('squares')
print('plotted 4 points')
"""

#: Escape attempts by name; ``{1}`` is the argument given after the name.
ESCAPES = {
    "secret": f"import os\nprint('env:', os.environ.get('{SECRET_NAME}'), len(os.environ))\n",
    "secret-proc": (
        "import glob\n"
        "leaked = []\n"
        "for path in glob.glob('/proc/[0-9]*/environ'):\n"
        "    try:\n"
        "        data = open(path, 'rb').read()\n"
        "    except OSError:\n"
        "        continue\n"
        f"    leaked += [p for p in data.split(bytes(1)) if p.startswith(b'{SECRET_NAME}=')]\n"
        "print('leaked:', leaked)\n"
    ),
    "socket": (
        "import socket\n"
        "for host, port in [('192.0.2.1', 80), ('127.0.0.1', {1})]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=1).close()\n"
        "        print(host, port, 'CONNECTED')\n"
        "    except OSError as exc:\n"
        "        print(host, port, 'refused:', exc)\n"
    ),
    "fork-bomb": "import os\nwhile True:\n    os.fork()\n",
    "memory-bomb": "hog = bytearray(8 * 1024**3)\n",
    "write-10gb": (
        "chunk = bytes(1024**2)\n"
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(10 * 1024):\n"
        "        f.write(chunk)\n"
    ),
    "infinite-loop": "while True:\n    pass\n",
}


def _code_call(code: str) -> dict[str, Any]:
    return {"name": "code_interpreter", "arguments": {"code": code}}


def script() -> dict[str, Any]:
    draw = "(?i)draw a picture of (?:a |an )?(?P<what>[^.]+)"
    rules: list[dict[str, Any]] = [
        {"user": draw, "tool_calls": [{"name": "quark_search", "arguments": {"query": "{what}"}}]},
        {
            "user": draw,
            "after_tool": "quark_search",
            "tool_calls": [{"name": "text_to_image", "arguments": {"prompt": "A {what}"}}],
        },
        {"user": draw, "after_tool": "text_to_image", "reply": "Here is your {what}: {output}"},
        {"user": "(?i)^plot squares", "tool_calls": [_code_call(PLOT)]},
        {"user": "^check$", "tool_calls": [_code_call("print(6 * 7)")]},
    ]
    for name, code in ESCAPES.items():
        pattern = f"^escape: {name}(?: (\\d+))?$" if "{1}" in code else f"^escape: {name}$"
        rules.append({"user": pattern, "tool_calls": [_code_call(code)]})
    rules.append({"after_tool": "code_interpreter", "reply": "The code said: {output}"})
    return {"default": "I can help with painting and Python.", "rules": rules}


def write_builtin_project(folder: Path) -> Path:
    """Write kit.yaml and its model script into ``folder``; returns ``folder``."""
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    (folder / "scripts" / "tools.yaml").write_text(
        yaml.safe_dump(script(), sort_keys=False), encoding="utf-8"
    )
    kit = {
        "server": {
            "models": {"default": {"backend": "scripted", "script": "scripts/tools.yaml"}},
            "tools": {
                "text_to_image": {"backend": "local", "width": 256, "height": 256},
                "quark_search": {"backend": "corpus", "path": str(CORPUS)},
                "code_interpreter": LIMITS,
            },
        }
    }
    (folder / "kit.yaml").write_text(yaml.safe_dump(kit, sort_keys=False), encoding="utf-8")
    return folder
