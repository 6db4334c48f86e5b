#!/usr/bin/env python3
"""Prints an executed notebook's code cells and their outputs as text, for
the demo's terminal. Fails when a cell raised."""
import json
import sys

nb = json.load(open(sys.argv[1]))
failed = False
for cell in nb["cells"]:
    if cell["cell_type"] != "code":
        continue
    print("In:  " + "".join(cell["source"]).replace("\n", "\n     "))
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            text = "".join(out["text"])
        elif out["output_type"] == "error":
            text, failed = out["ename"] + ": " + out["evalue"], True
        else:
            text = "".join(out.get("data", {}).get("text/plain", ""))
        print("Out: " + text.rstrip("\n").replace("\n", "\n     "))
    print()
sys.exit(1 if failed else 0)
