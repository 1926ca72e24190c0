#!/usr/bin/python3
"""A loopback SMTP server for the tests: it speaks real SMTP (Python's
smtpd) and stores every message it accepts as <n>.json in a directory:
{"mail_from": ..., "rcpt_to": [...], "data": <the message as sent>}.

    smtp_sink.py PORT OUT_DIR [PID_FILE]

Listens on 127.0.0.1:PORT until killed (SIGTERM). Writes PID_FILE once it
is listening, so a test can wait for it.
"""
import json
import os
import signal
import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore
    import smtpd


class Sink(smtpd.SMTPServer):
    def __init__(self, port, out_dir):
        super().__init__(("127.0.0.1", port), None, decode_data=False)
        self.out_dir = out_dir
        self.count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.count += 1
        record = {
            "mail_from": mailfrom,
            "rcpt_to": rcpttos,
            "data": data.decode("utf-8", "replace"),
        }
        # Written under a temporary name, then renamed: readers never see
        # half a message.
        final = os.path.join(self.out_dir, "%d.json" % self.count)
        tmp = os.path.join(self.out_dir, ".%d.tmp" % self.count)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, final)
        return None  # 250 OK


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: smtp_sink.py PORT OUT_DIR [PID_FILE]")
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    Sink(port, out_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write("%d\n" % os.getpid())
    asyncore.loop(timeout=0.5)


if __name__ == "__main__":
    main()
