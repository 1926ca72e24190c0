#!/usr/bin/python3
"""reminder_ics_expand.py - reads an iCalendar feed on stdin with the
icalendar package (an independent reader: Debian's python3-icalendar) and
prints, as JSON, every occurrence of every VEVENT in [FROM, TO] expanded
with dateutil from its DTSTART and RRULEs: [{"uid", "at_utc", "summary"}].
Also checks that every TZID used has its VTIMEZONE.

Usage: reminder_ics_expand.py FROM TO   (RFC 3339 UTC)
"""
import datetime
import json
import sys

from dateutil import rrule
import icalendar


def parse_utc(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def main():
    start, end = parse_utc(sys.argv[1]), parse_utc(sys.argv[2])
    cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
    zones = {str(c["TZID"]) for c in cal.walk("VTIMEZONE")}
    out, problems = [], []
    for ev in cal.walk("VEVENT"):
        dtstart_prop = ev["DTSTART"]
        tzid = dtstart_prop.params.get("TZID")
        if tzid and tzid not in zones:
            problems.append("no VTIMEZONE for %s" % tzid)
        dtstart = ev.decoded("DTSTART")
        rules = ev.get("RRULE")
        if rules is None:
            problems.append("VEVENT %s has no RRULE" % ev["UID"])
            continue
        if not isinstance(rules, list):
            rules = [rules]
        rs = rrule.rruleset()
        for r in rules:
            rs.rrule(rrule.rrulestr(r.to_ical().decode(), dtstart=dtstart))
        for t in rs.between(start, end, inc=True):
            out.append({"uid": str(ev["UID"]), "summary": str(ev["SUMMARY"]),
                        "at_utc": t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    json.dump({"occurrences": out, "problems": problems, "zones": sorted(zones)}, sys.stdout)


if __name__ == "__main__":
    main()
