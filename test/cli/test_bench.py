"""shmq bench --quick: every headline run completes, the tables and the headline are
printed, and --plot and --json write their files. The numbers of a quick run mean
little and are not checked."""

import json
import os
import tempfile
import unittest

from support import run


class bench_smoke(unittest.TestCase):
    def test_quick_run_with_plot_and_json(self):
        with tempfile.TemporaryDirectory(prefix="shmq-bench-") as d:
            png, out = os.path.join(d, "bench.png"), os.path.join(d, "bench.json")
            p = run("bench", "--quick", "--plot", png, "--json", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            text = p.stdout.decode()
            for words in ("One-way latency", "spin floor", "futex floor", "Throughput", "65536 B", "Headline:"):
                self.assertIn(words, text)
            self.assertIn(b"[14/14]", p.stderr)  # the progress line's last step
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            with open(out, encoding="utf-8") as f:
                names = [b["name"] for b in json.load(f)["benchmarks"]]
            self.assertTrue(any(n.startswith("shmq_spsc_latency_block/64") for n in names))


if __name__ == "__main__":
    unittest.main()
