"""shmq's command line: help for every subcommand, the version, and exit status 0 for
success, 1 for failure and 2 for usage, with errors that name the bad argument."""

import subprocess
import unittest

from support import SHMQ, channel_test, run

SUBCOMMANDS = ["pub", "sub", "stat", "top", "bench", "ls", "rm", "completion"]


class help_and_version(unittest.TestCase):
    def test_help_lists_every_subcommand(self):
        p = run("--help", check=0)
        for cmd in SUBCOMMANDS:
            self.assertIn(cmd.encode(), p.stdout)

    def test_every_subcommand_has_help(self):
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                p = run(cmd, "--help", check=0)
                self.assertIn(b"Usage:", p.stdout)

    def test_version(self):
        p = run("--version", check=0)
        self.assertRegex(p.stdout.decode(), r"^shmq \d+\.\d+\.\d+\n$")


class completion(unittest.TestCase):
    def complete(self, *words):
        """What bash completes for the last of `words` with the script sourced."""
        line = " ".join(words)
        script = (f'source <("{SHMQ}" completion); COMP_WORDS=({line}); '
                  f'COMP_CWORD={len(words) - 1}; _shmq; echo "${{COMPREPLY[@]}}"')
        p = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode().split()

    def test_subcommands_and_options(self):
        self.assertEqual(self.complete("shmq", "st"), ["stat"])
        self.assertEqual(self.complete("shmq", "sub", "--len"), ["--length-prefixed"])
        self.assertEqual(self.complete("shmq", "pub", "--ch"), ["--chunk"])


class usage_errors(unittest.TestCase):
    def expect_usage(self, args, mentions):
        p = run(*args)
        self.assertEqual(p.returncode, 2, f"{args}: {p.stderr!r}")
        self.assertIn(mentions.encode(), p.stderr)

    def test_no_subcommand(self):
        self.expect_usage([], "subcommand")

    def test_unknown_subcommand(self):
        self.expect_usage(["frobnicate"], "frobnicate")

    def test_missing_name(self):
        self.expect_usage(["pub"], "NAME")

    def test_unknown_option(self):
        self.expect_usage(["sub", "x", "--bogus"], "--bogus")

    def test_bad_kind(self):
        self.expect_usage(["pub", "x", "--kind", "ring"], "--kind")

    def test_bad_duration(self):
        self.expect_usage(["sub", "x", "--timeout", "soon"], "soon")

    def test_two_framings(self):
        self.expect_usage(["pub", "x", "--lines", "--length-prefixed"], "--length-prefixed")

    def test_chunk_needs_a_size(self):
        self.expect_usage(["pub", "x", "--chunk", "zero"], "--chunk")

    def test_rm_needs_a_name_or_stale(self):
        self.expect_usage(["rm"], "[NAME,--stale]")


class failures(channel_test):
    def test_stat_of_a_missing_channel(self):
        p = run("stat", self.channel("missing"))
        self.assertExit(p, 1)
        self.assertIn(b"does not exist", p.stderr)

    def test_rm_of_a_missing_channel(self):
        self.assertExit(run("rm", self.channel("missing")), 1)

    def test_invalid_name(self):
        p = run("stat", "../etc")
        self.assertExit(p, 1)
        self.assertIn(b"name", p.stderr)

    def test_group_on_an_spsc_channel(self):
        name = self.channel("spsc")
        run("pub", name, input=b"x\n", check=0)
        p = run("sub", name, "--group", "g")
        self.assertExit(p, 1)
        self.assertIn(b"pubsub", p.stderr)

    def test_kind_differs_from_the_segment(self):
        name = self.channel("kind")
        run("pub", name, "--kind", "queue", input=b"x\n", check=0)
        p = run("sub", name, "--kind", "spsc")
        self.assertExit(p, 1)
        self.assertIn(b"queue", p.stderr)

    def test_line_longer_than_the_channel_allows(self):
        name = self.channel("long")
        p = run("pub", name, "--kind", "queue", "--max-message-size", "16", input=b"x" * 17 + b"\n")
        self.assertExit(p, 1)
        self.assertIn(b"max message size", p.stderr)

    def test_truncated_length_prefixed_input(self):
        name = self.channel("truncated")
        p = run("pub", name, "--length-prefixed", input=b"\x10\x00\x00\x00abc")
        self.assertExit(p, 1)
        self.assertIn(b"ends inside a message", p.stderr)


if __name__ == "__main__":
    unittest.main()
