# Records when each task starts and ends on each host, one JSON line per
# event, in the file named by $RACE_TIMES_FILE (bench/race_ansible.sh).
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: race_times
    type: aggregate
    short_description: per-host task start/end timestamps for bench/race_ansible.sh
    description: Writes JSON lines (ts_ms, host, task, phase) to $RACE_TIMES_FILE.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'race_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        path = os.environ.get('RACE_TIMES_FILE')
        self._f = open(path, 'a') if path else None

    def _w(self, host, task, phase):
        if self._f is None:
            return
        self._f.write(json.dumps({'ts_ms': int(time.time() * 1000), 'host': host.get_name(),
                                  'task': task.get_name(), 'phase': phase}) + '\n')
        self._f.flush()

    def v2_runner_on_start(self, host, task):
        self._w(host, task, 'begin')

    def v2_runner_on_ok(self, result):
        self._w(result._host, result._task, 'end')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._w(result._host, result._task, 'fail')

    def v2_runner_on_unreachable(self, result):
        self._w(result._host, result._task, 'fail')
