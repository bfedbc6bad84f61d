"""A stand-in ``tegrastats`` for tests: prints lines computed from an emulated sysfs tree.

Run as ``fake_tegrastats.py SPEC.json --interval MS`` (``SysfsTree.install_tegrastats`` writes a
``tegrastats`` wrapper that does so). SPEC names the board's JetPack and each rail's files. It
reads those files on every line with its own arithmetic (mV x mA / 1000, truncated to whole
milliwatts as tegrastats prints them; a power file's value where the driver has one) and prints
the line in the format of that JetPack, as published lines show it:

- JetPack 4: ``RAM ... CPU [..] ... GR3D_FREQ 0%@76 ... POM_5V_IN 4520/4680 POM_5V_GPU 0/0``
  (no unit; AGX Xavier's rails are the bare ``GPU 463/463 CPU 618/618`` beside ``CPU [..]``);
- JetPack 5 and 6: ``... VDD_IN 5079mW/5079mW ...`` and ``NC 0mW/0mW`` for unconnected channels;
- JetPack 7 (Thor): a date prefix, no ``GR3D_FREQ``, three values ``VDD_GPU 1962mW/1962mW/1962mW``.

Standard library only (it runs with ``-I -S``). An unreadable rail is left out of that line.
"""

from __future__ import annotations

import json
import sys
import time


def _number(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mw(rail: dict) -> int | None:
    power = _number(rail.get("power"))
    if power is not None:
        return int(power * rail.get("scale", 1.0))
    volt, curr = _number(rail["volt"]), _number(rail["curr"])
    if volt is None or curr is None:
        return None
    return volt * curr // 1000


def line(spec: dict, averages: dict[str, list[int]], now: float) -> str:
    jetpack = spec["jetpack"]
    fields = []
    for rail in spec["rails"]:
        mw = _mw(rail)
        if mw is None:
            continue
        seen = averages.setdefault(rail["name"], [])
        seen.append(mw)
        avg = sum(seen) // len(seen)
        if jetpack == "4":
            fields.append(f"{rail['name']} {mw}/{avg}")
        elif jetpack == "7":
            fields.append(f"{rail['name']} {mw}mW/{avg}mW/{max(seen)}mW")
        else:
            fields.append(f"{rail['name']} {mw}mW/{avg}mW")
    for _ in range(spec.get("nc", 0)):
        fields.append("NC 0mW/0mW")
    power = " ".join(fields)
    if jetpack == "4":
        return ("RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) "
                "CPU [30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 "
                f"NVENC 716 NVDEC 716 APE 25 PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C "
                f"thermal@59.75C {power}")
    if jetpack == "7":
        stamp = time.strftime("%m-%d-%Y %H:%M:%S", time.localtime(now))
        return (f"{stamp} RAM 86905/125772MB (lfb 368x4MB) CPU [12%@972,10%@972,off,33%@1890] "
                f"cpu@39.812C tj@39.906C soc012@38.812C gpu@39.906C soc345@38.625C {power}")
    return ("RAM 2722/30536MB (lfb 6567x4MB) SWAP 0/15268MB (cached 0MB) "
            "CPU [2%@729,1%@729,0%@729,0%@729,off,off,off,off] EMC_FREQ 0%@2133 "
            "GR3D_FREQ 0%@[305,305] VIC_FREQ 115 APE 174 CV0@-256C CPU@44.5C SOC2@41.812C "
            f"SOC0@42.625C CV1@-256C GPU@41.531C tj@44.5C SOC1@41.343C CV2@-256C {power}")


def main(argv: list[str]) -> int:
    spec_path, args = argv[0], argv[1:]
    interval_ms = 1000
    if args[:1] == ["--interval"] and len(args) >= 2:
        interval_ms = int(args[1])
    elif args:
        print(f"tegrastats: unknown option {args[0]}", file=sys.stderr)
        return 1
    with open(spec_path) as f:
        spec = json.load(f)
    averages: dict[str, list[int]] = {}
    next_t = time.monotonic()
    while True:
        next_t += interval_ms / 1000.0
        time.sleep(max(0.0, next_t - time.monotonic()))
        sys.stdout.write(line(spec, averages, time.time()) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
