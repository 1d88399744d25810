"""``python -m tfvis.report --model SPEC``: the HTML report of any model (see ``python -m tfvis.report --help``)."""

from ..cli.report import report_main

if __name__ == "__main__":
    report_main()
