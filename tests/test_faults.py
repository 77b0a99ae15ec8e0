"""Every class of fault sansa must survive, in one suite (fast, tiny model).

Files from others never run code (hostile pickles, adapter metadata, torch files, NaN weights,
foreign architectures, the hash cache); every bad input is one line before any work (bombs,
truncated and animated images, FIFOs, unwritable or clashing outputs, malformed configs and split
files, torn logs); nothing is lost (umask, kills mid-write, concurrent runs). The tests live in
``tests/faults/`` by concern and are collected here.
"""

from tests.faults.files import *  # noqa: F401,F403
from tests.faults.inputs_outputs import *  # noqa: F401,F403
from tests.faults.training import *  # noqa: F401,F403
