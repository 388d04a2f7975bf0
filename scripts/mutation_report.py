"""Print the share of mutants killed per module after `mutmut run`, and check the survivors.

`make mutate` runs this after mutmut (docs/testing.md, "Mutation testing"). It reads mutmut's
own verdicts (`mutmut results --all true`, one `name: status` line per mutant) and prints one
row per module: mutants, killed, timed out, survived (including "no tests": a mutant no test
even reaches survives), and the share killed. A timeout counts as killed: the mutant made a
test hang, which the per-test timeout turns into a failure.

`--diffs [MODULE]` also prints the change each unexplained survivor made (of the modules whose
name starts with MODULE), to triage them.

Every survivor must be explained in docs/testing.md: a row under its module's heading that says
it is equivalent, with the reason. A survivor killed by a test written after the run is not
explained by a row: re-run it (`mutmut run NAME`) so that mutmut itself records the kill; a row
that says "killed by" or "gone" for a mutant mutmut still counts as a survivor is stale and is
printed as such. A survivor with no equivalent row is printed as unexplained and the exit status
is 1, as it is when a module is under the target share.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "testing.md"
TARGET = 0.90
KILLED = {"killed", "timeout", "caught by type check"}
LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
MODULE = re.compile(r"^(?P<module>.+?)\.x[_ǁ]")


def verdicts() -> dict[str, str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        if match := LINE.match(line):
            found[match["name"]] = match["status"].strip()
    return found


ROW = re.compile(r"^\| `(?P<short>[^`]+)` \|.*\| (?P<verdict>[^|]*?) \|\s*$")
HEADING = re.compile(r"^#### (?P<module>\S+)")


def verdict_rows(doc: str) -> dict[str, str]:
    """Mutant name (module + short name) → the first word of its row's verdict in `doc`.

    The document lists survivors under a `#### <module>` heading, one table row each:
    the short name in backticks, the change, the verdict (`equivalent: <reason>`, or, for a row
    kept after its mutant was killed or removed, `killed by …` / `gone …`; `OPEN …` while not
    triaged).
    """
    rows: dict[str, str] = {}
    module = ""
    for line in doc.splitlines():
        if heading := HEADING.match(line):
            module = heading["module"]
        elif row := ROW.match(line):
            rows[f"{module}.{row['short']}"] = row["verdict"].split(None, 1)[0].rstrip(":")
    return rows


def explained(doc: str) -> set[str]:
    """The survivors `doc` explains: those whose row says equivalent (with a reason)."""
    return {name for name, verdict in verdict_rows(doc).items() if verdict == "equivalent"}


def module_of(name: str) -> str:
    match = MODULE.match(name)
    return match["module"] if match else name.rsplit(".", 1)[0]


def show(name: str) -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run(
        [str(mutmut), "show", name], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def main(argv: list[str]) -> int:
    """`--diffs [MODULE_PREFIX]`: also print each unexplained survivor's change."""
    diffs = "--diffs" in argv
    prefix = next((a for a in argv if not a.startswith("--")), "")
    results = verdicts()
    if not results:
        print("no mutmut results: run `mutmut run` first (make mutate does)")
        return 1
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, status in sorted(results.items()):
        module = module_of(name)
        if status in KILLED:
            by_module[module]["killed" if status != "timeout" else "timeout"] += 1
        elif status == "not checked":
            by_module[module]["not checked"] += 1
        else:
            by_module[module]["survived"] += 1
            survivors.append(name)

    rows = verdict_rows(DOC.read_text()) if DOC.exists() else {}
    unexplained = [name for name in survivors if rows.get(name) != "equivalent"]
    stale = [name for name in unexplained if rows.get(name) in ("killed", "gone")]
    under: list[str] = []
    width = max(len(m) for m in by_module)
    print(f"{'module':<{width}}  mutants  killed  timeout  survived  killed %")
    totals: Counter[str] = Counter()
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        share = killed / total if total else 1.0
        totals.update(counts)
        flag = "" if share >= TARGET else f"  < {TARGET:.0%}"
        if share < TARGET:
            under.append(module)
        print(
            f"{module:<{width}}  {total:>7}  {counts['killed']:>6}  {counts['timeout']:>7}"
            f"  {counts['survived'] + counts['not checked']:>8}  {share:>7.1%}{flag}"
        )
    total = sum(totals.values())
    killed = totals["killed"] + totals["timeout"]
    print(f"{'all':<{width}}  {total:>7}  {totals['killed']:>6}  {totals['timeout']:>7}", end="")
    print(f"  {totals['survived'] + totals['not checked']:>8}  {killed / total:>7.1%}")
    if totals["not checked"]:
        print(f"\n{totals['not checked']} mutants not checked: the run was interrupted")
    if unexplained:
        print(f"\n{len(unexplained)} survivors not explained in {DOC.relative_to(ROOT)}:")
        for name in unexplained:
            if not name.startswith(prefix):
                continue
            note = f"   its row says {rows[name]}: re-run it" if name in stale else ""
            print(f"  {name}   (mutmut show '{name}'){note}")
            if diffs:
                print(show(name))
    ok = not unexplained and not under and not totals["not checked"]
    print("\nmutation testing: " + ("ok" if ok else "NOT ok"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
