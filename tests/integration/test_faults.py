#!/usr/bin/python3
"""Fault injection, short form (the long form is `make faults`): a client
workload of PUT / overwrite / GET / DELETE / LIST runs against an 8-node
4+2 cluster while a nemesis kills storage nodes (up to m at once), the
metadata leader and a follower, and the gateway; stops a node with SIGSTOP;
flips bits in and truncates fragment files; restarts a node with an empty
disk; fills a node's disk (ENOSPC); then several of these at once. After
each scenario every fault is healed and a checker goes through the history:
no acknowledged write lost, no read of bytes that were never written, no
stale read, LIST agreeing with GET. See tests/faults/run.py."""

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "faults"))

import run  # noqa: E402  (tests/faults/run.py)

suite, results = run.build_suite("faults_short", run.SHORT, seconds=None, threads=4, nkeys=24)
suite.main()
